//! The README cannot drift: its DSL table is the runtime's reference, and its catalogue
//! lists exactly the shipped losses.

const README: &str = include_str!("../README.md");

#[test]
fn readme_shows_the_dsl_reference_verbatim() {
    let table = include_str!("../loss-runtime/src/dsl.md");
    assert!(
        README.contains(table),
        "README.md's DSL table differs from loss-runtime/src/dsl.md"
    );
}

/// Rows of the README's catalogue table: (loss, family).
fn catalogue_rows() -> Vec<(String, String)> {
    let section = README
        .split("## Catalogue")
        .nth(1)
        .expect("README has a Catalogue section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_string(), cells[2].to_string())
        })
        .collect()
}

#[test]
fn readme_catalogue_lists_every_shipped_loss_and_nothing_else() {
    let rows = catalogue_rows();
    let shipped: Vec<(String, String)> = losskit::catalogue::all()
        .iter()
        .map(|e| (e.info.name.to_string(), e.info.family.name().to_string()))
        .collect();
    for s in &shipped {
        assert!(rows.contains(s), "README catalogue is missing {s:?}");
    }
    for r in &rows {
        assert!(
            shipped.contains(r),
            "README catalogue lists {r:?}, which is not shipped"
        );
    }
    assert_eq!(rows.len(), shipped.len());
}

/// Rows of the README's papers table: (number, status, last cell).
fn paper_rows() -> Vec<(u8, String, String)> {
    let section = README
        .split("## Papers")
        .nth(1)
        .expect("README has a Papers section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter(|l| l.starts_with("| ") && l.as_bytes().get(2).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").map(str::trim).collect();
            let number = cells[0].trim_start_matches("| ").parse().expect("a number");
            let last = cells[cells.len() - 1].trim_end_matches(" |").to_string();
            (number, cells[2].to_string(), last)
        })
        .collect()
}

#[test]
fn readme_papers_table_is_the_runtimes() {
    let rows = paper_rows();
    let papers = losskit::papers::all();
    assert_eq!(rows.len(), papers.len(), "one README row per paper");
    for ((number, status, what), p) in rows.iter().zip(papers) {
        assert_eq!(*number, p.number);
        assert_eq!(status, p.status().name(), "paper {number}");
        for loss in p.losses {
            assert!(
                what.contains(&format!("`{loss}`")),
                "paper {number}: {loss}"
            );
        }
        assert!(what.contains(p.remaining), "paper {number}: {what}");
    }
}
