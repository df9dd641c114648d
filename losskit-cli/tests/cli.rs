//! The `losskit` binary: `list` shows the whole catalogue, `eval` agrees with calling the
//! library directly (every family), `gpw` shows a pairs loss's pair weights as a table or a
//! PNG plot, and every problem ends with exit status 2 and one line on stderr.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use losskit::catalogue;
use losskit::family::dynamic::{self, Input, Precision};
use losskit::prelude::*;
use losskit::{Family, HyperKind, PairLabels, Real, Similarities, WithRefs};
use serde_json::{json, Value};

/// Runs `losskit` with `args`, feeding `stdin`.
fn losskit(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_losskit"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the losskit binary runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .expect("stdin takes the case");
    child.wait_with_output().expect("losskit finishes")
}

/// Writes `text` to a fresh file under the test's scratch directory.
fn case_file(text: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let k = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-case-{k}.json"));
    std::fs::write(&path, text).expect("the scratch directory is writable");
    path
}

/// Runs `losskit eval` on `case` (from a file) and returns its parsed output.
fn eval(case: &Value) -> Value {
    let path = case_file(&case.to_string());
    let out = losskit(&["eval", path.to_str().expect("a UTF-8 path")], "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "eval {case} failed: {stderr}");
    assert!(stderr.is_empty(), "eval {case} wrote to stderr: {stderr}");
    serde_json::from_slice(&out.stdout).expect("eval prints JSON")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

#[test]
fn list_names_every_loss() {
    let out = losskit(&["list"], "");
    assert!(out.status.success());
    let text = stdout(&out);
    for entry in catalogue::all() {
        let header = format!("{} ({})", entry.name(), entry.info.family.name());
        assert!(
            text.lines().any(|l| l == header),
            "`losskit list` lacks {header:?}"
        );
        for h in entry.info.hypers {
            assert!(text.contains(h.name), "`losskit list` lacks `{}`", h.name);
        }
    }
    assert!(text.contains("not differentiable"));
    // the pairs family's reference set is optional
    if catalogue::all()
        .iter()
        .any(|e| e.info.family == Family::Pairs)
    {
        assert!(text
            .lines()
            .any(|l| l.trim_start().starts_with("ref_labels") && l.ends_with("(optional)")));
    }
}

#[test]
fn list_all_shows_every_paper_and_what_is_missing() {
    let plain = stdout(&losskit(&["list"], ""));
    assert!(!plain.contains("papers ("), "papers only with --all");
    let out = losskit(&["list", "--all"], "");
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.starts_with(&plain), "--all starts with the plain list");
    let papers_part = &text[plain.len()..];
    for p in losskit::papers::all() {
        let header = format!("  {:02} {} ({})", p.number, p.title, p.year);
        let at = papers_part
            .find(&format!("{header}\n"))
            .unwrap_or_else(|| panic!("`list --all` lacks {header:?}"));
        let body: String = papers_part[at + header.len() + 1..]
            .lines()
            .take_while(|l| l.starts_with("     "))
            .collect();
        assert!(body.contains(p.status().name()), "{header}: {body}");
        for loss in p.losses {
            assert!(body.contains(loss), "{header} lacks `{loss}`");
        }
        assert!(body.contains(p.remaining), "{header} lacks what remains");
        assert!(!body.is_empty());
    }
}

#[test]
fn list_all_json_has_losses_and_papers() {
    let out = losskit(&["list", "--json", "--all"], "");
    assert!(out.status.success());
    let listed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let losses = listed["losses"].as_array().expect("losses");
    assert_eq!(losses.len(), catalogue::all().len());
    let papers = listed["papers"].as_array().expect("papers");
    assert_eq!(papers.len(), losskit::papers::all().len());
    for (got, want) in papers.iter().zip(losskit::papers::all()) {
        assert_eq!(got["number"], want.number);
        assert_eq!(got["title"], want.title);
        assert_eq!(got["status"], want.status().name());
        assert_eq!(got["losses"], json!(want.losses));
        assert_eq!(got["remaining"], want.remaining);
    }
}

#[test]
fn list_json_matches_the_catalogue() {
    let out = losskit(&["list", "--json"], "");
    assert!(out.status.success());
    let listed: Value = serde_json::from_slice(&out.stdout).expect("list --json prints JSON");
    let listed = listed.as_array().expect("an array");
    assert_eq!(listed.len(), catalogue::all().len());
    for (item, entry) in listed.iter().zip(catalogue::all()) {
        let info = entry.info;
        assert_eq!(item["name"], info.name);
        assert_eq!(item["family"], info.family.name());
        assert_eq!(item["paper"], info.paper);
        assert_eq!(item["summary"], info.summary);
        let inputs = item["inputs"].as_array().expect("inputs");
        let family = info.family.inputs();
        assert_eq!(inputs.len(), family.len() + info.declared.len());
        for (got, want) in inputs.iter().zip(family) {
            assert_eq!(got["name"], want.name);
            assert_eq!(got["shape"], want.shape);
            assert_eq!(got["differentiable"], want.differentiable);
            assert_eq!(got["alternative_to"], json!(want.alternative_to));
            assert_eq!(got["optional"], want.optional);
            assert_eq!(got["declared"], false);
            let role = got["role"].as_str().expect("a role");
            assert_eq!(role == "differentiable", want.differentiable, "{role}");
        }
        // the declared inputs follow the family's, by the names `eval` takes
        for (got, want) in inputs[family.len()..].iter().zip(info.declared) {
            assert_eq!(got["name"], want.name);
            assert_eq!(got["shape"], want.shape);
            assert_eq!(got["role"], want.role.name());
            assert_eq!(got["declared"], true);
        }
        let hypers = item["hypers"].as_array().expect("hypers");
        assert_eq!(hypers.len(), info.hypers.len());
        for (got, want) in hypers.iter().zip(info.hypers) {
            assert_eq!(got["name"], want.name);
            assert_eq!(got["constraint"], want.constraint);
            match want.kind {
                HyperKind::Real => assert_eq!(got["default"], want.default),
                HyperKind::Flag => assert_eq!(got["default"], want.default != 0.0),
            }
        }
    }
}

/// Nested JSON arrays flattened, row-major.
fn flat(value: &Value) -> Vec<f64> {
    match value {
        Value::Array(items) => items.iter().flat_map(flat).collect(),
        other => vec![other.as_f64().expect("a number")],
    }
}

/// Equal within 1e-6, relative to the larger of 1 and `|want|` (an `f32` printed in its
/// shortest form differs from its widened value in the 8th significant digit).
#[track_caller]
fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-6 * w.abs().max(1.0),
            "element {k}: {g} vs {w}"
        );
    }
}

/// Cross-entropy through the library, in precision `E`: the loss and `∂L/∂z`.
fn cross_entropy_direct<E: Dtype + Real>(z: &[f64], c: usize, labels: &[usize]) -> (f64, Vec<f64>)
where
    Cpu: Device<E>,
{
    let dev: Cpu = Default::default();
    let zs: Vec<E> = z.iter().map(|&x| <E as Real>::from_f64(x)).collect();
    let z: Tensor<(usize, usize), E, Cpu> = dev.tensor_from_vec(zs, (labels.len(), c));
    let loss = SoftmaxCrossEntropy::new().forward(z.leaky_trace(), labels);
    let value = loss.array().to_f64();
    let grads = loss.backward();
    (
        value,
        grads
            .get(&z)
            .as_vec()
            .into_iter()
            .map(Real::to_f64)
            .collect(),
    )
}

#[test]
fn eval_softmax_cross_entropy_agrees_with_the_library() {
    let z = [
        [2.0, 0.5, -1.0, 0.25],
        [0.0, 0.0, 3.0, -2.5],
        [1.5, -0.75, 0.1, 4.0],
    ];
    let labels = [0usize, 2, 1];
    let flat_z: Vec<f64> = z.iter().flatten().copied().collect();
    for dtype in ["f32", "f64"] {
        let out = eval(&json!({
            "loss": "softmax_cross_entropy",
            "dtype": dtype,
            "inputs": {"logits": z, "labels": labels},
        }));
        let (loss, grad) = match dtype {
            "f32" => cross_entropy_direct::<f32>(&flat_z, 4, &labels),
            _ => cross_entropy_direct::<f64>(&flat_z, 4, &labels),
        };
        assert_close(&[out["loss"].as_f64().expect("a loss")], &[loss]);
        let grads = out["grads"].as_object().expect("grads");
        assert_eq!(grads.len(), 1, "only `logits` is differentiable");
        let g = &grads["logits"];
        assert_eq!(g.as_array().map(Vec::len), Some(3));
        assert_eq!(g[0].as_array().map(Vec::len), Some(4));
        assert_close(&flat(g), &grad);
    }
}

/// A loss value and its gradient, flat.
type ValueAndGrad = (f64, Vec<f64>);

/// A logits-family loss through the library, in f64: the loss and `∂L/∂z`.
fn logits_direct<L>(loss: &L, z: &[f64], c: usize, labels: &[usize]) -> ValueAndGrad
where
    L: Loss<
        Tensor<(usize, usize), f64, Cpu, OwnedTape<f64, Cpu>>,
        [usize],
        Output = Tensor<(), f64, Cpu, OwnedTape<f64, Cpu>>,
    >,
{
    let dev: Cpu = Default::default();
    let z: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(z.to_vec(), (labels.len(), c));
    let out = loss.forward(z.leaky_trace(), labels);
    let value = out.array();
    (value, out.backward().get(&z).as_vec())
}

/// The classification losses of the comp-sum, Z-loss, LDR and DEPICT papers, with
/// hyper-parameters set by name, agree with the library.
#[test]
fn eval_classification_losses_agree_with_the_library() {
    let z = [
        [2.0, 0.5, -1.0, 0.25],
        [0.0, 0.0, 3.0, -2.5],
        [1.5, -0.75, 0.1, 4.0],
    ];
    let labels = [0usize, 2, 1];
    let flat_z: Vec<f64> = z.iter().flatten().copied().collect();
    // (loss, params, the library's loss and ∂L/∂z)
    let cases: Vec<(&str, Value, ValueAndGrad)> = vec![
        (
            "comp_sum",
            json!({}),
            logits_direct(&CompSum::new(), &flat_z, 4, &labels),
        ),
        (
            "comp_sum",
            json!({"tau": 1.5}),
            logits_direct(&CompSum::new().with_tau(1.5), &flat_z, 4, &labels),
        ),
        (
            "z_loss",
            json!({}),
            logits_direct(&ZLoss::new(), &flat_z, 4, &labels),
        ),
        ("z_loss", json!({"a": 2, "b": 0.5, "var_eps": 0.01}), {
            let loss = ZLoss::new().with_a(2.0).with_b(0.5).with_var_eps(0.01);
            logits_direct(&loss, &flat_z, 4, &labels)
        }),
        (
            "ldr_kl",
            json!({}),
            logits_direct(&LdrKl::new(), &flat_z, 4, &labels),
        ),
        ("ldr_kl", json!({"margin": 2, "lambda": 0.001}), {
            let loss = LdrKl::new().with_margin(2.0).with_lambda(1e-3);
            logits_direct(&loss, &flat_z, 4, &labels)
        }),
        (
            "depict_clustering_ce",
            json!({}),
            logits_direct(&DepictClusteringCe::new(), &flat_z, 4, &labels),
        ),
        ("depict_clustering_ce", json!({"paper_target": true}), {
            let loss = DepictClusteringCe::new().with_paper_target(true);
            logits_direct(&loss, &flat_z, 4, &labels)
        }),
    ];
    for (name, params, (value, grad)) in &cases {
        let out = eval(&json!({
            "loss": name,
            "dtype": "f64",
            "params": params,
            "inputs": {"logits": z, "labels": labels},
        }));
        assert_close(&[out["loss"].as_f64().expect("a loss")], &[*value]);
        let grads = out["grads"].as_object().expect("grads");
        assert_eq!(grads.len(), 1, "{name}: only `logits` is differentiable");
        assert_close(&flat(&grads["logits"]), grad);
    }
}

/// The experimental smooth adversarial comp-sum loss takes its declared adversarial
/// logits by name: `list --json` shows them as a differentiable `[N, C]` input, and `eval`
/// gives both gradients as the library does, with hyper-parameters set by name.
#[test]
fn smooth_adv_comp_sum_lists_and_evaluates_its_declared_input() {
    let out = losskit(&["list", "--json"], "");
    let listed: Value = serde_json::from_slice(&out.stdout).expect("list --json prints JSON");
    let item = listed
        .as_array()
        .expect("an array")
        .iter()
        .find(|item| item["name"] == "smooth_adv_comp_sum")
        .expect("smooth_adv_comp_sum is listed");
    assert!(item["summary"]
        .as_str()
        .expect("a summary")
        .starts_with("Experimental"));
    assert!(item["paper"]
        .as_str()
        .expect("a paper")
        .contains("EXPERIMENTAL"));
    let adv = &item["inputs"][2];
    assert_eq!(adv["name"], "adv_logits");
    assert_eq!(adv["shape"], "[N, C]");
    assert_eq!(adv["role"], "differentiable");
    assert_eq!(adv["declared"], true);

    let z = [[2.0, 0.5, -1.0, 0.25], [0.0, 0.0, 3.0, -2.5]];
    let a = [[1.5, 0.75, -0.5, 0.25], [0.5, 0.0, 2.0, -2.0]];
    let labels = [0usize, 2];
    let dev: Cpu = Default::default();
    let flat_rows = |m: &[[f64; 4]; 2]| m.iter().flatten().copied().collect::<Vec<f64>>();
    let zt: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(flat_rows(&z), (2, 4));
    let at: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(flat_rows(&a), (2, 4));
    let loss = SmoothAdvCompSum::new()
        .with_tau(1.5)
        .with_rho(2.0)
        .with_nu(0.5);
    let direct = loss.forward((zt.leaky_trace(), at.leaky_trace()), &labels);
    let value = direct.array();
    let grads = direct.backward();
    let out = eval(&json!({
        "loss": "smooth_adv_comp_sum",
        "dtype": "f64",
        "params": {"tau": 1.5, "rho": 2.0, "nu": 0.5},
        "inputs": {"logits": z, "labels": labels, "adv_logits": a},
    }));
    assert_close(&[out["loss"].as_f64().expect("a loss")], &[value]);
    let got = out["grads"].as_object().expect("grads");
    assert_eq!(got.len(), 2, "both logit tensors are differentiable");
    assert_close(&flat(&got["logits"]), &grads.get(&zt).as_vec());
    assert_close(&flat(&got["adv_logits"]), &grads.get(&at).as_vec());
    // without the adversarial logits, eval names the missing input
    let case = json!({
        "loss": "smooth_adv_comp_sum",
        "inputs": {"logits": z, "labels": labels},
    });
    let out = losskit(&["eval", "-"], &case.to_string());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("adv_logits"), "{stderr}");
}

/// AnyLoss F1 through the library, in precision `E`: the loss and `∂L/∂(probs or logits)`.
fn anyloss_f1_direct<E: Dtype + Real>(
    loss: &AnylossF1,
    preds: &[f64],
    targets: &[f64],
    from_logits: bool,
) -> (f64, Vec<f64>)
where
    Cpu: Device<E>,
{
    let dev: Cpu = Default::default();
    let vector = |xs: &[f64]| -> Tensor<(usize,), E, Cpu> {
        dev.tensor_from_vec(
            xs.iter().map(|&x| <E as Real>::from_f64(x)).collect(),
            (xs.len(),),
        )
    };
    let (p, y) = (vector(preds), vector(targets));
    let out = if from_logits {
        loss.forward(FromLogits(p.leaky_trace()), &y)
    } else {
        loss.forward(p.leaky_trace(), &y)
    };
    let value = out.array().to_f64();
    let grads = out.backward();
    (
        value,
        grads
            .get(&p)
            .as_vec()
            .into_iter()
            .map(Real::to_f64)
            .collect(),
    )
}

#[test]
fn eval_anyloss_f1_agrees_with_the_library() {
    let targets = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0];
    let probs = [0.9, 0.2, 0.55, 0.48, 0.3, 0.7];
    let logits = [2.0, -1.5, 0.1, -0.05, -0.8, 0.9];
    let cases = [
        ("probs", &probs, json!({}), AnylossF1::new()),
        (
            "probs",
            &probs,
            json!({"epsilon": 1e-3, "amplification": 30}),
            AnylossF1::new().with_epsilon(1e-3).with_amplification(30.0),
        ),
        ("logits", &logits, json!({}), AnylossF1::new()),
        (
            "logits",
            &logits,
            json!({"amplify": false}),
            AnylossF1::new().with_amplify(false),
        ),
        (
            "logits",
            &logits,
            json!({"amplify": 0}),
            AnylossF1::new().with_amplify(false),
        ),
    ];
    for (input, preds, params, loss) in &cases {
        for dtype in ["f32", "f64"] {
            let out = eval(&json!({
                "loss": "anyloss_f1",
                "dtype": dtype,
                "params": params,
                "inputs": {*input: preds, "targets": targets},
            }));
            let from_logits = *input == "logits";
            let (value, grad) = match dtype {
                "f32" => anyloss_f1_direct::<f32>(loss, *preds, &targets, from_logits),
                _ => anyloss_f1_direct::<f64>(loss, *preds, &targets, from_logits),
            };
            assert_close(&[out["loss"].as_f64().expect("a loss")], &[value]);
            let grads = out["grads"].as_object().expect("grads");
            assert_eq!(grads.len(), 1, "only `{input}` is differentiable");
            assert_close(&flat(&grads[*input]), &grad);
        }
    }
}

#[test]
fn eval_keeps_column_shapes_and_reads_stdin() {
    let case = json!({
        "loss": "anyloss_f1",
        "inputs": {"probs": [[0.9], [0.2], [0.6]], "targets": [[1], [0], [1]]},
    });
    let out = losskit(&["eval", "-"], &case.to_string());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let g = out["grads"]["probs"].as_array().expect("an array");
    assert_eq!(g.len(), 3);
    assert!(g.iter().all(|row| row.as_array().map(Vec::len) == Some(1)));
}

#[test]
fn help_and_version() {
    for flag in ["--help", "-h", "help"] {
        let out = losskit(&[flag], "");
        assert!(out.status.success());
        assert!(out.stderr.is_empty());
        let text = stdout(&out);
        assert!(text.contains("losskit list [--json]") && text.contains("losskit eval CASE.json"));
        assert!(text.contains("losskit gpw LOSS"));
        assert!(text.contains("Exit status: 0 on success, 2 on any problem"));
    }
    for flag in ["--version", "-V"] {
        let out = losskit(&[flag], "");
        assert!(out.status.success());
        assert_eq!(
            stdout(&out),
            format!("losskit {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}

/// Every subcommand has its own help, through `-h`, `--help` and `losskit help NAME`,
/// naming its usage, its arguments and its options; `help` prints on stdout, exit 0.
#[test]
fn every_subcommand_has_help() {
    let expected: &[(&str, &[&str])] = &[
        ("list", &["Usage: losskit list", "--json", "--all"]),
        (
            "eval",
            &[
                "Usage: losskit eval <CASE.json>",
                "`-` to read it from stdin",
                "\"params\": {\"epsilon\": 1e-6}",
                "Inputs by family",
                "scores   \"scores\" [Q, D]",
            ],
        ),
        (
            "gpw",
            &[
                "Usage: losskit gpw [OPTIONS] <LOSS>",
                "--out <weights.png>",
                "--n <N>",
                "--classes <C>",
                "--dim <D>",
                "--seed <S>",
                "[default: 64]",
            ],
        ),
    ];
    for (command, needles) in expected {
        for args in [[command, "--help"], [command, "-h"], ["help", command]] {
            let out = losskit(&args, "");
            assert!(out.status.success(), "{args:?}");
            assert!(out.stderr.is_empty(), "{args:?}");
            let text = stdout(&out);
            for needle in *needles {
                assert!(text.contains(needle), "{args:?} lacks {needle:?}:\n{text}");
            }
        }
    }
    // `--help` is the long form: gpw's description of the batch is only there
    let long = stdout(&losskit(&["gpw", "--help"], ""));
    assert!(long.contains("Gaussian clusters in D dimensions"), "{long}");
}

/// Asserts exit status 2, nothing on stdout, and one stderr line containing `needle`.
#[track_caller]
fn assert_fails(out: &Output, needle: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: status; stderr: {stderr}"
    );
    assert!(out.stdout.is_empty(), "{what}: wrote to stdout");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{what}: not one line: {stderr:?}"
    );
    assert!(stderr.ends_with('\n'), "{what}: unterminated line");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{what}: {stderr:?} does not contain {needle:?}"
    );
}

#[test]
fn command_line_errors() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "missing command"),
        (&["lst"], "unknown command `lst` (did you mean `list`?)"),
        (&["list", "--jsn"], "unknown option `--jsn`"),
        (&["eval"], "needs a case file"),
        (&["eval", "a.json", "b.json"], "takes one case file"),
        (&["eval", "/no/such/case.json"], "cannot read case file"),
    ];
    for (args, needle) in cases {
        assert_fails(&losskit(args, ""), needle, &format!("{args:?}"));
    }
}

/// clap's usage errors, reworded: exit 2 and one line naming the argument, never clap's
/// several-line report with its usage and tip.
#[test]
fn usage_errors_are_one_line() {
    let cases: &[(&[&str], &str)] = &[
        (&["--foo"], "unknown option `--foo` to `losskit`"),
        (&["-x"], "unknown option `-x` to `losskit`"),
        (&["list", "extra"], "unexpected argument `extra` to `losskit list`"),
        (
            &["list", "--jsn"],
            "unknown option `--jsn` to `losskit list` (did you mean `--json`?); it takes `--json`",
        ),
        (&["list", "--json=yes"], "--json"),
        (&["eval", "--case", "x.json"], "unknown option `--case` to `losskit eval`; it takes only `--help`"),
        (&["eval"], "`losskit eval` needs a case file: `losskit eval <CASE.json>`"),
        (&["gpw"], "`losskit gpw` needs a pairs loss: `losskit gpw <LOSS>`"),
        (
            &["gpw", "multi_similarity", "--ot", "w.png"],
            "unknown option `--ot` to `losskit gpw` (did you mean `--out`?); it takes `--out`, `--n`, `--classes`, `--dim` and `--seed`",
        ),
        (&["gpw", "multi_similarity", "--out"], "`--out` needs a value"),
        (&["gpw", "multi_similarity", "--n", "2000"], "`--n` must be an integer from 2 to 1024, not `2000`"),
        (&["gpw", "multi_similarity", "--classes=0"], "`--classes` must be an integer from 1 to"),
        (&["gpw", "multi_similarity", "--seed", "-1"], "`--seed` must be a non-negative integer, not `-1`"),
        (&["gpw", "multi_similarity", "--seed", "x"], "`--seed` must be a non-negative integer"),
        (&["help", "nosuch"], "unknown command `nosuch`"),
    ];
    for (args, needle) in cases {
        let out = losskit(args, "");
        assert_fails(&out, needle, &format!("{args:?}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("losskit: "), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("Usage:") && !stderr.contains("tip:"),
            "{args:?}: {stderr}"
        );
    }
}

/// An argument that is not UTF-8 is named (lossily), not a panic.
#[cfg(unix)]
#[test]
fn a_non_utf8_argument_is_one_line() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let bad = OsStr::from_bytes(b"multi\xffsimilarity");
    let out = Command::new(env!("CARGO_BIN_EXE_losskit"))
        .arg("gpw")
        .arg(bad)
        .output()
        .expect("the losskit binary runs");
    assert_fails(&out, "is not valid UTF-8", "a non-UTF-8 loss name");
    assert!(String::from_utf8_lossy(&out.stderr).contains("multi\u{fffd}similarity"));
}

#[test]
fn case_errors() {
    let binary = |inputs: Value| json!({"loss": "anyloss_f1", "inputs": inputs});
    let logits = |inputs: Value| json!({"loss": "softmax_cross_entropy", "inputs": inputs});
    let ok_binary = json!({"probs": [0.7, 0.2], "targets": [1, 0]});
    let cases: Vec<(String, &str)> = vec![
        // the file itself
        ("{\"loss\": ".into(), "invalid JSON"),
        ("[1, 2]".into(), "must hold a JSON object"),
        (
            json!({"loss": "anyloss_f1"}).to_string(),
            "missing `inputs`",
        ),
        (json!({"inputs": {}}).to_string(), "missing `loss`"),
        (
            json!({"loss": "anyloss_f1", "input": {}}).to_string(),
            "unknown key `input` in",
        ),
        // the loss and its parameters
        (
            json!({"loss": "anyloss_f2", "inputs": ok_binary}).to_string(),
            "unknown loss `anyloss_f2` (did you mean `anyloss_f1`?)",
        ),
        (
            json!({"loss": "anyloss_f1", "dtype": "f16", "inputs": ok_binary}).to_string(),
            "unknown dtype `f16`",
        ),
        (
            json!({"loss": "anyloss_f1", "params": {"epsilom": 1e-6}, "inputs": ok_binary})
                .to_string(),
            "no hyper-parameter `epsilom` (did you mean `epsilon`?)",
        ),
        (
            json!({"loss": "anyloss_f1", "params": {"epsilon": -1}, "inputs": ok_binary})
                .to_string(),
            "`epsilon` = -1",
        ),
        (
            json!({"loss": "anyloss_f1", "params": {"amplify": "no"}, "inputs": ok_binary})
                .to_string(),
            "`amplify` of `anyloss_f1` is a switch",
        ),
        (
            json!({"loss": "anyloss_f1", "params": {"amplify": 2}, "inputs": ok_binary})
                .to_string(),
            "`amplify` = 2",
        ),
        (
            json!({"loss": "anyloss_f1", "params": {"epsilon": true}, "inputs": ok_binary})
                .to_string(),
            "`epsilon` of `anyloss_f1` must be a number",
        ),
        // the inputs
        (
            binary(json!({"targets": [1, 0]})).to_string(),
            "missing input `probs` or `logits`",
        ),
        (
            binary(json!({"probs": [0.5, 0.5]})).to_string(),
            "missing input `targets`",
        ),
        (
            binary(json!({"prob": [0.5], "targets": [1]})).to_string(),
            "no input named `prob`",
        ),
        (
            binary(json!({"probs": [0.5], "logits": [0.5], "targets": [1]})).to_string(),
            "both `probs` and `logits`",
        ),
        (
            binary(json!({"probs": [0.5, 0.2, 0.1], "targets": [1, 0]})).to_string(),
            "`targets` has 2 along `samples`, but `probs` has 3",
        ),
        (
            binary(json!({"probs": [[0.5, 0.2]], "targets": [[1, 0]]})).to_string(),
            "bad shape for `probs`",
        ),
        (
            binary(json!({"probs": [0.5], "targets": [[1, 0]]})).to_string(),
            "bad shape for `targets`: got [1, 2], expected [N]",
        ),
        (
            binary(json!({"probs": [], "targets": []})).to_string(),
            "empty batch",
        ),
        (
            binary(json!({"probs": [1.5], "targets": [1]})).to_string(),
            "outside [0, 1]",
        ),
        (
            binary(json!({"probs": [0.5], "targets": [2]})).to_string(),
            "`targets` must be 0 or 1",
        ),
        (
            logits(json!({"logits": [[1, 2], [3]], "labels": [0, 1]})).to_string(),
            "ragged array: `logits[1]` has 1 element, expected 2",
        ),
        (
            logits(json!({"logits": [[1, 2], 3], "labels": [0, 1]})).to_string(),
            "ragged array: `logits[1]` is a number",
        ),
        (
            logits(json!({"logits": [[1, "x"]], "labels": [0]})).to_string(),
            "`logits[0][1]` is a string",
        ),
        (
            logits(json!({"logits": [1, 2], "labels": [0]})).to_string(),
            "bad shape for `logits`",
        ),
        (
            logits(json!({"logits": [[1, 2]], "labels": [-1]})).to_string(),
            "labels must be non-negative integers",
        ),
        (
            logits(json!({"logits": [[1, 2]], "labels": [0.5]})).to_string(),
            "labels must be non-negative integers",
        ),
        (
            logits(json!({"logits": [[1, 2]], "labels": [2]})).to_string(),
            "`classes` has only 2 elements",
        ),
    ];
    for (case, needle) in &cases {
        let path = case_file(case);
        let out = losskit(&["eval", path.to_str().expect("a UTF-8 path")], "");
        assert_fails(&out, needle, case);
    }
}

// ---------------------------------------------------------------------------------------
// pairs and scores

const EMB: [[f64; 3]; 6] = [
    [1.0, 0.2, -0.1],
    [0.8, 0.5, 0.0],
    [0.1, 1.0, 0.3],
    [-0.2, 0.9, 0.6],
    [0.6, 0.6, 0.2],
    [0.3, -0.4, 1.0],
];
const LABELS: [usize; 6] = [0, 0, 1, 1, 2, 2];
const REFS: [[f64; 3]; 4] = [
    [0.9, 0.4, 0.1],
    [0.0, 1.0, 0.2],
    [0.5, 0.5, 0.9],
    [0.2, -0.1, 0.8],
];
const REF_LABELS: [usize; 4] = [0, 1, 2, 2];
const SIM: [[f64; 4]; 4] = [
    [1.0, 0.7, 0.2, 0.4],
    [0.7, 1.0, 0.6, 0.1],
    [0.2, 0.6, 1.0, 0.5],
    [0.4, 0.1, 0.5, 1.0],
];
const SIM_LABELS: [usize; 4] = [0, 0, 1, 1];
const SIM_REFS: [[f64; 4]; 3] = [
    [0.9, 0.1, 0.4, 0.3],
    [0.3, 0.8, 0.5, 0.6],
    [0.2, 0.4, 0.7, 0.9],
];
const SIM_REF_ROW_LABELS: [usize; 3] = [0, 1, 2];

/// Multi-Similarity with every pair mined (`epsilon` = 2), so that no gradient is
/// trivially zero; `params` sets the same through `losskit eval`.
fn multi_similarity() -> (MultiSimilarity, Value) {
    (
        MultiSimilarity::new()
            .with_pml_style(true)
            .with_epsilon(2.0),
        json!({"pml_style": true, "epsilon": 2.0}),
    )
}

/// A `[rows, cols]` tensor of `rows`, in precision `E`.
fn matrix<E: Dtype + Real, const C: usize>(rows: &[[f64; C]]) -> Tensor<(usize, usize), E, Cpu>
where
    Cpu: Device<E>,
{
    let dev: Cpu = Default::default();
    let values = rows
        .iter()
        .flatten()
        .map(|&x| <E as Real>::from_f64(x))
        .collect();
    dev.tensor_from_vec(values, (rows.len(), C))
}

fn widen<E: Real>(xs: Vec<E>) -> Vec<f64> {
    xs.into_iter().map(Real::to_f64).collect()
}

/// The ways a pairs loss can be given its input.
#[derive(Clone, Copy, Debug)]
enum PairsCase {
    /// `embeddings` against themselves.
    Embeddings,
    /// `embeddings` against `ref_embeddings`.
    WithRefs,
    /// A square `similarities` matrix (the batch against itself).
    Similarities,
    /// `similarities` `[N, M]` with `ref_labels`.
    SimilaritiesWithRefs,
}

impl PairsCase {
    const ALL: [PairsCase; 4] = [
        PairsCase::Embeddings,
        PairsCase::WithRefs,
        PairsCase::Similarities,
        PairsCase::SimilaritiesWithRefs,
    ];

    /// The `inputs` of the case file.
    fn inputs(self) -> Value {
        match self {
            Self::Embeddings => json!({"embeddings": EMB, "labels": LABELS}),
            Self::WithRefs => json!({
                "embeddings": EMB, "labels": LABELS,
                "ref_embeddings": REFS, "ref_labels": REF_LABELS,
            }),
            Self::Similarities => json!({"similarities": SIM, "labels": SIM_LABELS}),
            Self::SimilaritiesWithRefs => json!({
                "similarities": SIM_REFS, "labels": SIM_REF_ROW_LABELS,
                "ref_labels": SIM_LABELS,
            }),
        }
    }

    /// The differentiable inputs, in the order `eval` reports their gradients.
    fn differentiable(self) -> &'static [&'static str] {
        match self {
            Self::Embeddings => &["embeddings"],
            Self::WithRefs => &["embeddings", "ref_embeddings"],
            Self::Similarities | Self::SimilaritiesWithRefs => &["similarities"],
        }
    }

    /// The loss and the gradients of the differentiable inputs, through the typed API.
    fn direct<E: Dtype + Real>(self, loss: &MultiSimilarity) -> (f64, Vec<Vec<f64>>)
    where
        Cpu: Device<E>,
    {
        match self {
            Self::Embeddings => {
                let e = matrix::<E, 3>(&EMB);
                let out = loss.forward(e.leaky_trace(), &LABELS[..]);
                let value = out.array().to_f64();
                let grads = out.backward();
                (value, vec![widen(grads.get(&e).as_vec())])
            }
            Self::WithRefs => {
                let (e, r) = (matrix::<E, 3>(&EMB), matrix::<E, 3>(&REFS));
                let labels = PairLabels {
                    labels: &LABELS,
                    ref_labels: &REF_LABELS,
                };
                let out = loss.forward(WithRefs(e.leaky_trace(), r.leaky_trace()), &labels);
                let value = out.array().to_f64();
                let grads = out.backward();
                (
                    value,
                    vec![widen(grads.get(&e).as_vec()), widen(grads.get(&r).as_vec())],
                )
            }
            Self::Similarities => {
                let s = matrix::<E, 4>(&SIM);
                let out = loss.forward(Similarities(s.leaky_trace()), &SIM_LABELS[..]);
                let value = out.array().to_f64();
                let grads = out.backward();
                (value, vec![widen(grads.get(&s).as_vec())])
            }
            Self::SimilaritiesWithRefs => {
                let s = matrix::<E, 4>(&SIM_REFS);
                let labels = PairLabels {
                    labels: &SIM_REF_ROW_LABELS,
                    ref_labels: &SIM_LABELS,
                };
                let out = loss.forward(Similarities(s.leaky_trace()), &labels);
                let value = out.array().to_f64();
                let grads = out.backward();
                (value, vec![widen(grads.get(&s).as_vec())])
            }
        }
    }
}

#[test]
fn eval_pairs_agrees_with_the_library() {
    let (loss, params) = multi_similarity();
    for case in PairsCase::ALL {
        for dtype in ["f32", "f64"] {
            let out = eval(&json!({
                "loss": "multi_similarity",
                "dtype": dtype,
                "params": params,
                "inputs": case.inputs(),
            }));
            let (value, grads) = match dtype {
                "f32" => case.direct::<f32>(&loss),
                _ => case.direct::<f64>(&loss),
            };
            assert_close(&[out["loss"].as_f64().expect("a loss")], &[value]);
            let got = out["grads"].as_object().expect("grads");
            let names: Vec<&str> = got.keys().map(String::as_str).collect();
            assert_eq!(names, case.differentiable(), "{case:?}");
            for (name, want) in case.differentiable().iter().zip(&grads) {
                assert_close(&flat(&got[*name]), want);
                assert!(
                    want.iter().any(|&g| g != 0.0),
                    "{case:?}: `{name}` all zero"
                );
            }
        }
    }
}

/// A small scores loss of the test's own: the mean over queries of the mean hinge between
/// each relevant and each irrelevant document.
#[loss(scores)]
fn pairwise_hinge(
    s: Scores,
    r: Relevance,
    #[hyper(default = 1.0, positive)] margin: f64,
) -> PerQuery {
    mean(relevant(i), |d| {
        mean(irrelevant(i), |e| relu(margin - s[i][d] + s[i][e]))
    })
}

const SCORES: [[f64; 5]; 3] = [
    [2.0, 0.5, 1.5, -1.0, 0.3],
    [0.0, 1.0, 0.8, 0.9, -0.2],
    [0.4, -0.3, 1.1, 0.6, 0.2],
];
const RELEVANCE: [[f64; 5]; 3] = [
    [1.0, 0.0, 1.0, 0.0, 0.0],
    [0.0, 1.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 1.0, 1.0],
];

/// A scores loss through the typed API, in precision `E`: the loss and `∂L/∂scores`.
fn scores_direct<E: Dtype + Real, L>(loss: &L) -> (f64, Vec<f64>)
where
    Cpu: Device<E>,
    L: Loss<
        Tensor<(usize, usize), E, Cpu, OwnedTape<E, Cpu>>,
        Tensor<(usize, usize), E, Cpu>,
        Output = Tensor<(), E, Cpu, OwnedTape<E, Cpu>>,
    >,
{
    let (s, r) = (matrix::<E, 5>(&SCORES), matrix::<E, 5>(&RELEVANCE));
    let out = loss.forward(s.leaky_trace(), &r);
    let value = out.array().to_f64();
    let grads = out.backward();
    (value, widen(grads.get(&s).as_vec()))
}

#[test]
fn eval_scores_agrees_with_the_library() {
    let scores_inputs = [
        Input::new(
            "scores",
            vec![3, 5],
            SCORES.iter().flatten().copied().collect(),
        ),
        Input::new(
            "relevance",
            vec![3, 5],
            RELEVANCE.iter().flatten().copied().collect(),
        ),
    ];
    // the test's own loss, through the evaluator `losskit eval` runs
    for precision in Precision::ALL {
        let got =
            dynamic::evaluate::<PairwiseHinge>(&scores_inputs, &[], precision).expect("evaluates");
        let (value, grad) = match precision {
            Precision::F32 => scores_direct::<f32, _>(&PairwiseHinge::new()),
            _ => scores_direct::<f64, _>(&PairwiseHinge::new()),
        };
        assert_close(&[got.loss], &[value]);
        assert_eq!(got.grads.len(), 1);
        assert_close(&got.grads[0].values, &grad);
    }
    // every shipped scores loss, through the binary; the soft top-k needs K below the 5
    // documents of the case
    let params = |name: &str| -> Vec<(&'static str, f64)> {
        match name {
            "dexml_soft_topk" => vec![("k", 2.0)],
            _ => Vec::new(),
        }
    };
    // NCE's declared input: the noise log-density at every entry
    let declared = |name: &str| -> Option<Input> {
        (name == "nce").then(|| {
            let log_q = (0..15).map(|k| -0.2 * f64::from(k % 4) - 1.0).collect();
            Input::new("log_q", vec![3, 5], log_q)
        })
    };
    let case = |name: &str, dtype: &str| {
        let params: serde_json::Map<String, Value> = params(name)
            .into_iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let mut inputs = json!({"scores": SCORES, "relevance": RELEVANCE});
        if let Some(d) = declared(name) {
            let rows: Vec<&[f64]> = d.values.chunks(d.shape[1]).collect();
            inputs[d.name.as_str()] = json!(rows);
        }
        json!({
            "loss": name,
            "dtype": dtype,
            "params": params,
            "inputs": inputs,
        })
    };
    for entry in catalogue::all()
        .iter()
        .filter(|e| e.info.family == Family::Scores)
    {
        for precision in Precision::ALL {
            let out = eval(&case(entry.name(), precision.name()));
            let inputs: Vec<Input> = scores_inputs
                .iter()
                .cloned()
                .chain(declared(entry.name()))
                .collect();
            let want = entry
                .evaluate(&inputs, &params(entry.name()), precision)
                .expect("evaluates");
            assert_close(&[out["loss"].as_f64().expect("a loss")], &[want.loss]);
            let grads = out["grads"].as_object().expect("grads");
            assert_eq!(grads.len(), 1, "only `scores` is differentiable");
            assert_close(&flat(&grads["scores"]), &want.grads[0].values);
        }
    }
    // DEXML against its typed API
    for dtype in ["f32", "f64"] {
        let out = eval(&case("dexml_soft_topk", dtype));
        let loss = DexmlSoftTopk::new().with_k(2.0);
        let (value, grad) = match dtype {
            "f32" => scores_direct::<f32, _>(&loss),
            _ => scores_direct::<f64, _>(&loss),
        };
        assert_close(&[out["loss"].as_f64().expect("a loss")], &[value]);
        assert_close(&flat(&out["grads"]["scores"]), &grad);
    }
}

#[test]
fn pairs_and_scores_case_errors() {
    let pairs = |inputs: Value| json!({"loss": "multi_similarity", "inputs": inputs});
    let mut cases: Vec<(String, &str)> = vec![
        (
            pairs(json!({"embeddings": EMB})).to_string(),
            "missing input `labels` (needed by `multi_similarity`)",
        ),
        (
            pairs(json!({"labels": LABELS})).to_string(),
            "missing input `embeddings` or `similarities`",
        ),
        (
            pairs(json!({"embeddings": EMB, "labels": LABELS, "ref_embeddings": REFS})).to_string(),
            "`ref_embeddings` given without `ref_labels`",
        ),
        (
            pairs(json!({"embeddings": EMB, "labels": LABELS, "ref_labels": REF_LABELS}))
                .to_string(),
            "`ref_labels` given without `ref_embeddings`",
        ),
        (
            pairs(json!({"similarities": SIM_REFS, "labels": SIM_REF_ROW_LABELS})).to_string(),
            "bad shape for `similarities`: got [3, 4], expected a square [N, N] matrix",
        ),
        (
            pairs(json!({"similarities": SIM, "labels": SIM_LABELS, "ref_embeddings": REFS}))
                .to_string(),
            "`ref_embeddings` cannot be given with `similarities`",
        ),
        (
            pairs(json!({"embeddings": EMB, "similarities": SIM, "labels": LABELS})).to_string(),
            "both `embeddings` and `similarities`",
        ),
        (
            pairs(json!({"embeddings": EMB, "labels": [0, 1]})).to_string(),
            "`labels` has 2 along `samples`, but `embeddings` has 6",
        ),
        (
            pairs(json!({"embeddings": EMB, "labels": [0, 0, 1, 1, 2, 2.5]})).to_string(),
            "`labels[5]` is 2.5",
        ),
        (
            pairs(json!({
                "embeddings": EMB, "labels": LABELS,
                "ref_embeddings": [[1.0, 0.0]], "ref_labels": [0],
            }))
            .to_string(),
            "give both the same number of columns",
        ),
    ];
    if let Some(entry) = catalogue::all()
        .iter()
        .find(|e| e.info.family == Family::Scores)
    {
        let scores = |inputs: Value| json!({"loss": entry.name(), "inputs": inputs});
        cases.push((
            scores(json!({"scores": SCORES})).to_string(),
            "missing input `relevance`",
        ));
        cases.push((
            scores(json!({"scores": [1.0, 2.0], "relevance": [1, 0]})).to_string(),
            "bad shape for `scores`",
        ));
    }
    for (case, needle) in &cases {
        let path = case_file(case);
        let out = losskit(&["eval", path.to_str().expect("a UTF-8 path")], "");
        assert_fails(&out, needle, case);
    }
}

// ---------------------------------------------------------------------------------------
// gpw

/// The number in the column after `label` on the line starting with `label`.
fn column(text: &str, label: &str, k: usize) -> usize {
    let line = text
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` line in {text}"));
    line.split_whitespace()
        .nth(k)
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("no count {k} in {line:?}"))
}

#[test]
fn gpw_prints_a_table_of_the_pair_weights() {
    let out = losskit(&["gpw", "multi_similarity"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
    let text = stdout(&out);
    assert!(text.starts_with("multi_similarity: pair weights"), "{text}");
    assert!(text.contains("cosine similarity"), "{text}");
    // 64 embeddings in 8 clusters: 8 × 7 positives and 8 × 56 negatives per cluster
    assert_eq!(column(&text, "positive", 1), 448);
    assert_eq!(column(&text, "negative", 1), 3584);
    let nonzero_pos = column(&text, "positive", 2);
    let nonzero_neg = column(&text, "negative", 2);
    assert!(nonzero_pos > 0 && nonzero_pos <= 448, "{text}");
    assert!(nonzero_neg > 0 && nonzero_neg < 3584, "{text}");
    // ten bins whose counts add up to the pairs
    let bins: Vec<&str> = text.lines().filter(|l| l.starts_with("  [")).collect();
    assert_eq!(bins.len(), 10, "{text}");
    let (mut pos, mut neg) = (0, 0);
    for line in &bins {
        let cells: Vec<&str> = line.split_whitespace().collect();
        // `[lo,` `hi)` then: positives, mean w, negatives, mean w
        pos += cells[2].parse::<usize>().expect("a count");
        neg += cells[4].parse::<usize>().expect("a count");
        for (count, mean) in [(cells[2], cells[3]), (cells[4], cells[5])] {
            assert_eq!(count == "0", mean == "-", "{line}");
        }
    }
    assert_eq!((pos, neg), (448, 3584));
    // seeded: the same options print the same table, another seed another one
    let small = [
        "gpw",
        "multi_similarity",
        "--n",
        "12",
        "--classes",
        "3",
        "--dim=4",
    ];
    let a = stdout(&losskit(&small, ""));
    assert_eq!(a, stdout(&losskit(&small, "")));
    assert_eq!(column(&a, "positive", 1), 12 * 3);
    assert_eq!(column(&a, "negative", 1), 12 * 8);
    let seeded = [&small[..], &["--seed", "7"]].concat();
    assert_ne!(a, stdout(&losskit(&seeded, "")));
}

#[test]
fn gpw_draws_a_png() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("gpw-weights.png");
    let _ = std::fs::remove_file(&path);
    let path_arg = path.to_str().expect("a UTF-8 path");
    let out = losskit(&["gpw", "multi_similarity", "--out", path_arg], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).contains("4032 pairs"));
    let png = std::fs::read(&path).expect("the plot was written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 10_000,
        "suspiciously small: {} bytes",
        png.len()
    );
}

#[test]
fn gpw_errors() {
    let cases: &[(&[&str], &str)] = &[
        (&["gpw"], "needs a pairs loss"),
        (
            &["gpw", "anyloss_f1"],
            "`anyloss_f1` is a `binary` loss; `losskit gpw` shows the pair weights of a `pairs` loss",
        ),
        (
            &["gpw", "softmax_cross_entropy"],
            "is a `logits` loss",
        ),
        (
            &["gpw", "multi_similarty"],
            "unknown loss `multi_similarty` (did you mean `multi_similarity`?)",
        ),
        (
            &["gpw", "multi_similarity", "--n", "1"],
            "`--n` must be an integer from 2 to",
        ),
        (
            &["gpw", "multi_similarity", "--dim", "x"],
            "`--dim` must be an integer",
        ),
        (&["gpw", "multi_similarity", "--seed"], "`--seed` needs a value"),
        (
            &["gpw", "multi_similarity", "--n", "4", "--classes", "5"],
            "must not exceed `--n`",
        ),
        (
            &["gpw", "multi_similarity", "--bins", "3"],
            "unknown option `--bins`",
        ),
        (
            &["gpw", "multi_similarity", "--out", "w.jpg"],
            "must name a .png file",
        ),
        (
            &["gpw", "multi_similarity", "--out", "/no/such/dir/w.png"],
            "cannot draw",
        ),
        (
            &["gpw", "multi_similarity", "multi_similarity"],
            "takes one pairs loss",
        ),
    ];
    for (args, needle) in cases {
        assert_fails(&losskit(args, ""), needle, &format!("{args:?}"));
    }
}

#[test]
fn duplicate_keys_in_a_case_are_refused() {
    let cases = [
        (
            r#"{"loss": "anyloss_f1", "loss": "anyloss_fbeta", "inputs": {}}"#,
            "duplicate key `loss`",
        ),
        (
            r#"{"loss": "anyloss_f1", "inputs": {"probs": [0.7, 0.2], "targets": [1, 0], "probs": [0.1, 0.9]}}"#,
            "duplicate key `probs`",
        ),
        (
            r#"{"loss": "anyloss_f1", "params": {"epsilon": 1e-6, "epsilon": 1e-3}, "inputs": {}}"#,
            "duplicate key `epsilon`",
        ),
    ];
    for (case, needle) in cases {
        assert_fails(&losskit(&["eval", "-"], case), needle, case);
    }
}

#[test]
fn a_huge_name_is_echoed_clipped() {
    let name = "x".repeat(10_000_000);
    let case = json!({"loss": name, "inputs": {}}).to_string();
    let out = losskit(&["eval", "-"], &case);
    assert_fails(&out, "unknown loss `xxxx", "a 10 MB loss name");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.len() < 300, "{} bytes echoed", stderr.len());
    assert!(stderr.contains("x…`"), "{stderr}");
    // and as a command
    let out = losskit(&[&name[..100_000]], "");
    assert_fails(&out, "unknown command `xxxx", "a 100 kB command");
    assert!(out.stderr.len() < 300, "{} bytes echoed", out.stderr.len());
}

#[test]
fn negative_zero_reads_as_zero_in_messages() {
    let case = json!({"loss": "anyloss_f1", "params": {"epsilon": -0.0},
                      "inputs": {"probs": [0.7, 0.2], "targets": [1, 0]}});
    let out = losskit(&["eval", "-"], &case.to_string());
    assert_fails(&out, "`epsilon` = 0, but it must be", "epsilon = -0");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("-0"));
}

#[test]
fn icnn_refuses_a_batch_over_its_work_limit() {
    let embeddings: Vec<Vec<f64>> = (0..6).map(|i| vec![f64::from(i), 1.0]).collect();
    let labels = [0, 0, 0, 1, 1, 1];
    let case = |max_work: f64| {
        json!({"loss": "icnn", "params": {"max_work": max_work},
               "inputs": {"embeddings": embeddings, "labels": labels}})
    };
    // N·M² = 216
    let out = losskit(&["eval", "-"], &case(200.0).to_string());
    assert_fails(&out, "`icnn` would run for too long", "icnn over max_work");
    assert_fails(&out, "raise `max_work`", "icnn over max_work");
    let ok = eval(&case(216.0));
    assert!(ok["loss"].as_f64().is_some_and(f64::is_finite), "{ok}");
    // `list` says what it costs
    let list = stdout(&losskit(&["list"], ""));
    let icnn = list
        .lines()
        .skip_while(|l| *l != "icnn (pairs)")
        .nth(1)
        .expect("icnn has a summary line");
    assert!(icnn.contains("O(N·M²)"), "{icnn}");
}

/// Out of memory is one line and exit 2, not an abort: 20,000 embeddings need a 3.2 GB
/// similarity matrix in f64, more than the 1 GB of address space the run is given.
#[cfg(unix)]
#[test]
fn out_of_memory_is_an_error_not_an_abort() {
    let n: u32 = 20_000;
    let embeddings: Vec<[f64; 2]> = (0..n).map(|i| [1.0, f64::from(i % 7)]).collect();
    let labels: Vec<u32> = (0..n).map(|i| i % 10).collect();
    let case = json!({"loss": "multi_similarity", "dtype": "f64",
                      "inputs": {"embeddings": embeddings, "labels": labels}});
    let path = case_file(&case.to_string());
    let script = format!(
        "ulimit -v 1000000 && exec \"{}\" eval \"{}\"",
        env!("CARGO_BIN_EXE_losskit"),
        path.display()
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("sh runs");
    assert_fails(
        &out,
        "out of memory: the similarity matrix",
        "20,000 × 2 f64",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("GB ("), "the size it needed: {stderr}");
}

/// Finite inputs whose result is not finite, hyper-parameters the dtype cannot hold and
/// similarities that overflow: exit 2 with one line, never a `null` with exit 0.
#[test]
fn eval_never_prints_a_non_finite_result() {
    let cases = [
        (
            json!({"loss": "softmax_cross_entropy", "dtype": "f32",
                   "inputs": {"logits": [[1.0, 2.0], [3e38, -3e38]], "labels": [0, 1]}}),
            "`softmax_cross_entropy` came out inf from finite inputs, first at sample 1",
        ),
        (
            json!({"loss": "anyloss_fbeta", "dtype": "f32", "params": {"beta": 1e40},
                   "inputs": {"probs": [0.7, 0.2], "targets": [1, 0]}}),
            "`anyloss_fbeta`: `beta` = ",
        ),
        (
            json!({"loss": "dexml_soft_topk", "dtype": "f32", "params": {"alpha": 1e-40},
                   "inputs": {"scores": [[1.0, 0.0, 0.5]], "relevance": [[1, 0, 0]]}}),
            "must be representable in f32",
        ),
        (
            json!({"loss": "proto_triplet", "dtype": "f32",
                   "inputs": {"embeddings": [[1e20, 0.0], [0.0, 1.0], [-1e20, 2.0]],
                              "labels": [0, 0, 1]}}),
            "the similarity computed from `embeddings` overflowed",
        ),
    ];
    for (case, needle) in cases {
        let out = losskit(&["eval", "-"], &case.to_string());
        assert_fails(&out, needle, &case.to_string());
        assert!(!String::from_utf8_lossy(&out.stderr).contains("`similarities`"));
    }
}

/// The inputs that gave `null` before now give finite numbers: F-β at β = 1e20 in f32,
/// DEXML soft top-k with a score of 1e12 in f32 and 1e14 in f64, and cosine similarity
/// of rows whose squares overflow f32.
#[test]
fn eval_extreme_but_valid_inputs_give_finite_numbers() {
    let cases = [
        json!({"loss": "anyloss_fbeta", "dtype": "f32", "params": {"beta": 1e20},
               "inputs": {"probs": [0.7, 0.2, 0.9], "targets": [1, 0, 1]}}),
        json!({"loss": "dexml_soft_topk", "dtype": "f32", "params": {"k": 2},
               "inputs": {"scores": [[1e12, 0.5, 0.1, -0.3]], "relevance": [[0, 1, 0, 0]]}}),
        json!({"loss": "dexml_soft_topk", "dtype": "f64", "params": {"k": 2},
               "inputs": {"scores": [[1e14, 0.5, 0.1, -0.3]], "relevance": [[0, 1, 0, 0]]}}),
        json!({"loss": "multi_similarity", "dtype": "f32",
               "inputs": {"embeddings": [[3e19, 4e19], [1.0, 0.5], [-2e20, 1e20], [0.3, -1.0]],
                          "labels": [0, 0, 1, 1]}}),
    ];
    for case in cases {
        let out = eval(&case);
        let grads = out["grads"].as_object().expect("grads");
        let mut numbers: Vec<f64> = grads.values().flat_map(flat).collect();
        numbers.push(out["loss"].as_f64().expect("a number"));
        assert!(numbers.iter().all(|x| x.is_finite()), "{case}: {out}");
    }
}

/// The margin heads evaluate by name on a cosine matrix (the `logits`), ElasticFace with
/// its draws `eps` by name, and agree with the library.
#[test]
fn eval_margin_heads_agree_with_the_library() {
    let cos = [[0.9, 0.1, -0.3], [0.2, 0.7, 0.4], [-0.5, 0.3, 0.6]];
    let labels = [0usize, 1, 2];
    let eps = [0.3, -1.2, 0.8];
    let flat_cos: Vec<f64> = cos.iter().flatten().copied().collect();
    let dev: Cpu = Default::default();
    let z: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(flat_cos.clone(), (3, 3));
    let elastic = {
        let loss = ElasticFaceArc::plus_defaults().with_s(16.0);
        let out = loss.forward((z.leaky_trace(), &eps[..]), &labels);
        (out.array(), out.backward().get(&z).as_vec())
    };
    let cases: Vec<(&str, Value, Value, ValueAndGrad)> = vec![
        (
            "arc_face",
            json!({"s": 16, "easy_margin": true}),
            json!({}),
            logits_direct(
                &ArcFace::new().with_s(16.0).with_easy_margin(true),
                &flat_cos,
                3,
                &labels,
            ),
        ),
        (
            "cos_face",
            json!({}),
            json!({}),
            logits_direct(&CosFace::new(), &flat_cos, 3, &labels),
        ),
        (
            "normalized_softmax_ce",
            json!({}),
            json!({}),
            logits_direct(&NormalizedSoftmaxCe::new(), &flat_cos, 3, &labels),
        ),
        (
            "s_face",
            json!({"s": 16}),
            json!({}),
            logits_direct(&SFace::new().with_s(16.0), &flat_cos, 3, &labels),
        ),
        (
            "elastic_face_arc",
            json!({"s": 16, "sigma": 0.0175, "plus": true}),
            json!({"eps": eps}),
            elastic,
        ),
    ];
    for (name, params, extra, (value, grad)) in &cases {
        let mut inputs = json!({"logits": cos, "labels": labels});
        for (k, v) in extra.as_object().expect("an object") {
            inputs[k] = v.clone();
        }
        let out = eval(&json!({
            "loss": name,
            "dtype": "f64",
            "params": params,
            "inputs": inputs,
        }));
        assert_close(&[out["loss"].as_f64().expect("a loss")], &[*value]);
        let grads = out["grads"].as_object().expect("grads");
        assert_eq!(grads.len(), 1, "{name}: only `logits` is differentiable");
        assert_close(&flat(&grads["logits"]), grad);
    }
}

/// UNPG evaluates by name with its pair cosines `sn` and mask `keep`, and agrees with the
/// library in the value and both gradients (cosine logits and pair cosines).
#[test]
fn eval_unpg_agrees_with_the_library() {
    let cos = [
        [0.9, 0.1, -0.3],
        [0.2, 0.7, 0.4],
        [-0.5, 0.3, 0.6],
        [0.1, 0.2, 0.8],
    ];
    let labels = [0usize, 1, 2, 2];
    let sn = [
        [1.0, 0.3, -0.2, 0.1],
        [0.3, 1.0, 0.5, -0.4],
        [-0.2, 0.5, 1.0, 0.9],
        [0.1, -0.4, 0.9, 1.0],
    ];
    let keep = [
        [0.0, 1.0, 1.0, 0.0],
        [0.0, 0.0, 1.0, 1.0],
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
    ];
    let flat_cos: Vec<f64> = cos.iter().flatten().copied().collect();
    let flat_sn: Vec<f64> = sn.iter().flatten().copied().collect();
    let flat_keep: Vec<f64> = keep.iter().flatten().copied().collect();
    let dev: Cpu = Default::default();
    let z: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(flat_cos, (4, 3));
    let p: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(flat_sn, (4, 4));
    let loss = Unpg::new().with_s(8.0).with_m(0.3);
    let out = loss.forward((z.leaky_trace(), p.leaky_trace(), &flat_keep[..]), &labels);
    let value = out.array();
    let grads = out.backward();
    let out = eval(&json!({
        "loss": "unpg",
        "dtype": "f64",
        "params": {"s": 8, "m": 0.3},
        "inputs": {"logits": cos, "labels": labels, "sn": sn, "keep": keep},
    }));
    assert_close(&[out["loss"].as_f64().expect("a loss")], &[value]);
    let got = out["grads"].as_object().expect("grads");
    assert_close(&flat(&got["logits"]), &grads.get(&z).as_vec());
    assert_close(&flat(&got["sn"]), &grads.get(&p).as_vec());
}

/// SymFace evaluates by name with its half cosines `halves` and selection `front`, and
/// agrees with the library in the value and both gradients.
#[test]
fn eval_sym_face_agrees_with_the_library() {
    let cos = [[0.9, 0.1, -0.3], [0.2, 0.7, 0.4], [-0.5, 0.3, 0.6]];
    let labels = [0usize, 1, 2];
    let halves = [[0.8, 0.1, -0.2], [0.3, 0.5, 0.4], [-0.6, 0.2, 0.95]];
    let front = [1.0, 0.0, 0.6];
    let flat_cos: Vec<f64> = cos.iter().flatten().copied().collect();
    let flat_halves: Vec<f64> = halves.iter().flatten().copied().collect();
    let dev: Cpu = Default::default();
    let z: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(flat_cos, (3, 3));
    let h: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(flat_halves, (3, 3));
    let loss = SymFace::new().with_s(8.0).with_lambda(2.0);
    let out = loss.forward((z.leaky_trace(), h.leaky_trace(), &front[..]), &labels);
    let value = out.array();
    let grads = out.backward();
    let out = eval(&json!({
        "loss": "sym_face",
        "dtype": "f64",
        "params": {"s": 8, "lambda": 2},
        "inputs": {"logits": cos, "labels": labels, "halves": halves, "front": front},
    }));
    assert_close(&[out["loss"].as_f64().expect("a loss")], &[value]);
    let got = out["grads"].as_object().expect("grads");
    assert_close(&flat(&got["logits"]), &grads.get(&z).as_vec());
    assert_close(&flat(&got["halves"]), &grads.get(&h).as_vec());
}
