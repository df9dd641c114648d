//! The `losskit` binary: `list` shows the whole catalogue, `eval` agrees with calling the
//! library directly, and every problem ends with exit status 2 and one line on stderr.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use losskit::catalogue;
use losskit::prelude::*;
use losskit::{HyperKind, Real};
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
        assert_eq!(inputs.len(), info.family.inputs().len());
        for (got, want) in inputs.iter().zip(info.family.inputs()) {
            assert_eq!(got["name"], want.name);
            assert_eq!(got["shape"], want.shape);
            assert_eq!(got["differentiable"], want.differentiable);
            assert_eq!(got["alternative_to"], json!(want.alternative_to));
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

#[track_caller]
fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-6, "element {k}: {g} vs {w}");
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
        let text = stdout(&out);
        assert!(text.contains("losskit list [--json]") && text.contains("losskit eval CASE.json"));
    }
    let out = losskit(&["--version"], "");
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("losskit "));
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
        (&["list", "--jsn"], "unknown argument `--jsn`"),
        (&["eval"], "needs a case file"),
        (&["eval", "a.json", "b.json"], "takes one case file"),
        (&["eval", "/no/such/case.json"], "cannot read case file"),
    ];
    for (args, needle) in cases {
        assert_fails(&losskit(args, ""), needle, &format!("{args:?}"));
    }
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
            "batch size mismatch",
        ),
        (
            binary(json!({"probs": [[0.5, 0.2]], "targets": [[1, 0]]})).to_string(),
            "bad shape for `probs`",
        ),
        (
            binary(json!({"probs": [0.5], "targets": [[1]]})).to_string(),
            "give both the same rank",
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
            "targets must be 0 or 1",
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
            "only 2 classes",
        ),
    ];
    for (case, needle) in &cases {
        let path = case_file(case);
        let out = losskit(&["eval", path.to_str().expect("a UTF-8 path")], "");
        assert_fails(&out, needle, case);
    }
}
