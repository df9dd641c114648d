//! The messages' suggestions and wording.

use super::*;

#[test]
fn did_you_mean_finds_typos() {
    let functions = ["exp", "ln", "ln_1p", "sqrt", "softplus", "sigmoid"];
    assert_eq!(did_you_mean("exq", functions), Some("exp"));
    assert_eq!(did_you_mean("sofplus", functions), Some("softplus"));
    assert_eq!(did_you_mean("sigmiod", functions), Some("sigmoid"));
    assert_eq!(
        did_you_mean("clases", ["samples", "classes"]),
        Some("classes")
    );
    assert_eq!(did_you_mean("Logit", ["Logits", "Labels"]), Some("Logits"));
}

#[test]
fn did_you_mean_stays_quiet_when_nothing_is_close() {
    // one-letter names: any other letter is one edit away, which is no evidence
    assert_eq!(did_you_mean("z", ["i", "k", "y"]), None);
    assert_eq!(did_you_mean("margin", ["z", "y", "i", "k"]), None);
    assert_eq!(did_you_mean("frobnicate", ["exp", "ln"]), None);
    // an exact match is not a suggestion
    assert_eq!(did_you_mean("exp", ["exp"]), None);
    assert_eq!(did_you_mean("exp", std::iter::empty()), None);
}

#[test]
fn did_you_mean_prefers_the_closest_then_the_first() {
    assert_eq!(did_you_mean("maen", ["max", "mean"]), Some("mean"));
    assert_eq!(did_you_mean("mix", ["min", "max"]), Some("min"));
}

#[test]
fn edit_distance_counts_insertions_deletions_and_substitutions() {
    assert_eq!(edit_distance("", ""), 0);
    assert_eq!(edit_distance("abc", ""), 3);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(edit_distance("σ", "s"), 1);
    assert_eq!(edit_distance("maen", "mean"), 1);
    assert_eq!(edit_distance("ab", "ba"), 1);
}

#[test]
fn lists_read_as_prose() {
    assert_eq!(list(&[]), "");
    assert_eq!(list(&["a"]), "`a`");
    assert_eq!(list(&["a", "b"]), "`a` and `b`");
    assert_eq!(one_of(&["a", "b", "c"]), "`a`, `b` or `c`");
}

/// Every message: lowercase (or code) first, one `; help: `, no trailing period.
#[test]
fn every_message_follows_the_style() {
    let s = Span::call_site();
    let t = quote::quote!(x);
    let errors = [
        unknown_family(s, "logit", &["binary", "logits"], &["pairs"]),
        unknown_family(s, "zzz", &["binary", "logits"], &["pairs"]),
        family_not_yet(s, "pairs"),
        missing_family(s),
        second_family(&t, "logits", "binary"),
        unknown_loss_argument(&t, "x"),
        expected_string(&t, "paper"),
        unsupported_item(&t, "`async`"),
        bad_loss_name(s, "__"),
        raw_identifier(s, "r#type"),
        too_many(&t, "hyper-parameters", 200),
        unknown_input_type(&t, "Logit", "logits", &["Logits", "Labels"]),
        duplicate_parameter(s, "a"),
        family_hyper_clash(s, "amplify", "binary"),
        duplicate_input_role(&t, "Labels", "samples, classes"),
        hyper_without_default(s, "a", true),
        hyper_without_default(s, "a", false),
        hyper_type(&t),
        unknown_hyper_option(&t, "postive"),
        bad_default(&t, "number"),
        bad_range(&t),
        default_violates(&t, "a", "-1.0", "positive", "> 0"),
        untyped_parameter(&t),
        unknown_output(&t, "PerAnchor", Some("logits"), &["Scalar", "PerSample"]),
        unknown_output(&t, "PerAnchor", None, &["Scalar", "PerSample"]),
        missing_output(s),
        unknown_function(s, "exq", &["exp"]),
        unknown_function(s, "zzz", &["exp"]),
        unknown_name(s, "scle", &["scale"]),
        unknown_name(s, "q", &[]),
        index_outside_reduction(s, "k", "sum(classes, |k| ..)"),
        sample_index_in_scalar(s, "i", "samples", "PerAnchor"),
        unknown_set(s, "clases", &["samples", "classes"]),
        bad_set(&t, &["samples", "refs"], ("refs", "j")),
        reduction_needs_closure(&t, "sum", ("refs", "j")),
        reduction_extra_arguments(&t, "sum", 3, ("classes", "k")),
        index_compared_with_number(&t, "k", Some("k != y[i]")),
        index_compared_with_number(&t, "d", None),
        closure_params(&t),
        filter_index_mismatch(&t, "c", "k"),
        arity(&t, "clamp", "three arguments", "clamp(x, lo, hi)"),
        shadowed(s, "a"),
        non_differentiable(&t, "round"),
        comparison_as_value(&t),
        expected_condition(&t),
        index_as_value(&t, "k"),
        expected_index(&t),
        wrong_rank(&t, "z", 2, 1),
        index_domain(&t, "z", 0, "samples", "classes"),
        index_domain(&t, "z", 4, "samples", "classes"),
        input_not_indexed(&t, "z", "z[i][k]"),
        labels_as_value(&t, "y"),
        not_indexable(&t),
        unknown_field(&t, "cm", "tpp", &["tp", "fp"]),
        no_fields(&t, "z"),
        powi_exponent(&t),
        bad_literal(&t),
        literal_out_of_range(&t),
        scalar_mismatch(&t),
        unsupported_syntax(&t, "a `for` loop"),
        mutable_binding(&t),
        mutation(&t, "+="),
        missing_tail(s, true, true),
        missing_tail(s, false, false),
        unknown_method(&t, "exp", true),
        unknown_method(&t, "foo", false),
        filter_outside_reduction(&t, ("classes", "k")),
        confusion_not_indexable(&t, "cm"),
        if_without_else(&t),
        require_message(&t),
        require_as_value(&t),
        require_in_branch(&t),
        require_without_number(&t),
    ];
    for e in errors {
        let m = e.to_string();
        let first = m.chars().next().unwrap_or(' ');
        assert!(first.is_lowercase() || first == '`', "{m}");
        assert_eq!(m.matches("; help: ").count(), 1, "{m}");
        assert!(!m.ends_with('.'), "{m}");
        assert!(!m.contains("{{") && !m.contains("}}"), "{m}");
    }
}
