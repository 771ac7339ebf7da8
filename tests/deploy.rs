//! The deploy kit, checked with the tools this machine has: the Kustomize
//! base and the KEDA example render (`kubectl kustomize`), validate against
//! Kubernetes' schemas (`kubernetes-validate`) and agree with the
//! configuration they ship (ports, probes, grace period, queue); the
//! Terraform is formatted and its IAM policy is README's (its providers
//! cannot be downloaded here, so it is neither initialised nor planned);
//! the Grafana dashboard and the alert rules query only metrics s3logd
//! exports.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{BUCKET, Harness, Notify, alb_key, s3_event};
use regex::Regex;
use s3logd_test_support::moto::venv_tool;
use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ sits in the workspace")
        .to_path_buf()
}

/// A file of the repository, by its path from the workspace root.
fn read(path: &str) -> String {
    std::fs::read_to_string(workspace().join(path))
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// YAML documents as JSON, read by the venv's PyYAML (moto brings it).
fn yaml_documents(yaml: &[u8]) -> Vec<Value> {
    // The venv's Python: the requirements bring PyYAML.
    let python = venv_tool("kubernetes-validate").with_file_name("python");
    let mut child = Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml; json.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout)",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("cannot run the venv's python");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(yaml)
        .expect("cannot write to python");
    let output = child.wait_with_output().expect("python did not finish");
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).expect("python printed JSON")
}

/// `kubectl kustomize <dir>`, validated strictly against the schemas of
/// the Kubernetes version kubernetes-validate knows, as JSON documents.
fn render_and_validate(dir: &str) -> Vec<Value> {
    let rendered = run(Command::new("kubectl")
        .arg("kustomize")
        .arg(workspace().join(dir)))
    .stdout;
    let file = tempfile::NamedTempFile::new().expect("cannot create a temporary file");
    std::fs::write(file.path(), &rendered).expect("cannot write the manifests");
    let validated = run(Command::new(venv_tool("kubernetes-validate"))
        .args(["--strict", "--no-warn"])
        .arg(file.path()));
    let report = String::from_utf8_lossy(&validated.stdout);
    let documents = yaml_documents(&rendered);
    // One "passed" per resource of a kind it has a schema for.
    let built_in = documents
        .iter()
        .filter(|d| !d["apiVersion"].as_str().unwrap_or("").contains(".sh/"))
        .count();
    assert_eq!(
        report.matches(" passed for resource ").count(),
        built_in,
        "{report}"
    );
    documents
}

fn resource<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    let mut found = documents.iter().filter(|d| d["kind"] == kind);
    let first = found.next().unwrap_or_else(|| panic!("no {kind} rendered"));
    assert!(found.next().is_none(), "more than one {kind}");
    first
}

/// Whether every label `selector` names is on `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let selector = selector.as_object().expect("a selector is a map");
    !selector.is_empty() && selector.iter().all(|(name, value)| labels[name] == *value)
}

fn check_config(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_s3logd"))
        .arg("check-config")
        .arg(path)
        .output()
        .expect("cannot run s3logd check-config")
}

#[test]
fn the_kustomize_base_renders_valid_manifests_that_agree_with_its_configuration() {
    let documents = render_and_validate("deploy/kubernetes/base");
    let deployment = resource(&documents, "Deployment");
    let pod = &deployment["spec"]["template"];
    let container = &pod["spec"]["containers"][0];

    let config_text = resource(&documents, "ConfigMap")["data"]["s3logd.toml"]
        .as_str()
        .expect("the ConfigMap holds s3logd.toml");
    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    let config_file = dir.path().join("s3logd.toml");
    std::fs::write(&config_file, config_text).expect("cannot write the configuration");
    let checked = check_config(&config_file);
    assert!(checked.status.success(), "{checked:?}");
    let config: toml::Table = config_text.parse().expect("the configuration is TOML");

    // The image deploy/container/build.sh tags by default, of this version.
    assert_eq!(
        container["image"],
        format!("localhost/s3logd:{}", env!("CARGO_PKG_VERSION")).as_str()
    );
    let build = read("deploy/container/build.sh");
    assert!(build.contains("image=${1:-localhost/s3logd:$version}"));

    // The container reads the file where the ConfigMap is mounted.
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("an argument is text"))
        .collect();
    let config_path = args[args
        .iter()
        .position(|a| *a == "--config")
        .expect("--config")
        + 1];
    let mount = container["volumeMounts"]
        .as_array()
        .expect("volume mounts")
        .iter()
        .find(|m| m["name"] == "config")
        .expect("the config volume is mounted");
    assert_eq!(
        Path::new(config_path).parent(),
        Some(Path::new(
            mount["mountPath"].as_str().expect("a mount path")
        ))
    );

    // Probes and scraping reach the metrics listener from outside the pod.
    let listen: std::net::SocketAddr = config["metrics"]["listen"]
        .as_str()
        .expect("metrics.listen")
        .parse()
        .expect("metrics.listen is an address");
    assert!(
        listen.ip().is_unspecified(),
        "{listen} is not reachable by the kubelet"
    );
    let port = &container["ports"][0];
    assert_eq!(port["containerPort"], u64::from(listen.port()));
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/port"],
        listen.port().to_string()
    );
    for (probe, path) in [
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ] {
        assert_eq!(container[probe]["httpGet"]["path"], path, "{probe}");
        assert_eq!(container[probe]["httpGet"]["port"], port["name"], "{probe}");
    }

    // Kubernetes waits for s3logd's own grace period before killing it.
    let grace = config["shutdown"]["grace_period_secs"]
        .as_integer()
        .expect("shutdown.grace_period_secs");
    let termination = pod["spec"]["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("terminationGracePeriodSeconds");
    assert!(termination > grace, "{termination} s ≤ s3logd's {grace} s");

    let account = resource(&documents, "ServiceAccount");
    assert_eq!(
        pod["spec"]["serviceAccountName"],
        account["metadata"]["name"]
    );
    assert!(
        account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
            .as_str()
            .is_some_and(|arn| arn.starts_with("arn:aws:iam::")),
        "the service account names no IAM role: {account}"
    );

    let labels = &pod["metadata"]["labels"];
    assert!(selects(
        &deployment["spec"]["selector"]["matchLabels"],
        labels
    ));
    let budget = resource(&documents, "PodDisruptionBudget");
    assert!(selects(&budget["spec"]["selector"]["matchLabels"], labels));
    let service = resource(&documents, "Service");
    assert!(selects(&service["spec"]["selector"], labels));
    assert_eq!(service["spec"]["ports"][0]["targetPort"], port["name"]);

    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
    assert!(container["resources"]["limits"]["memory"].is_string());
}

#[test]
fn the_keda_example_scales_the_deployment_on_its_queue() {
    let documents = render_and_validate("deploy/kubernetes/examples/keda");
    let deployment = resource(&documents, "Deployment");
    assert!(
        deployment["spec"].get("replicas").is_none(),
        "a fixed replica count would fight the autoscaler"
    );
    let scaled = resource(&documents, "ScaledObject");
    assert_eq!(scaled["apiVersion"], "keda.sh/v1alpha1");
    assert_eq!(
        scaled["spec"]["scaleTargetRef"]["name"],
        deployment["metadata"]["name"]
    );
    assert_eq!(
        scaled["metadata"]["namespace"],
        deployment["metadata"]["namespace"]
    );
    let trigger = &scaled["spec"]["triggers"][0];
    assert_eq!(trigger["type"], "aws-sqs-queue");
    let config: toml::Table = resource(&documents, "ConfigMap")["data"]["s3logd.toml"]
        .as_str()
        .expect("s3logd.toml")
        .parse()
        .expect("TOML");
    assert_eq!(
        trigger["metadata"]["queueURL"].as_str(),
        config["queue"]["url"].as_str(),
        "KEDA watches another queue than s3logd reads"
    );
    assert!(
        trigger["metadata"]["queueLength"]
            .as_str()
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n > 0)
    );
}

#[test]
fn the_terraform_is_formatted() {
    run(Command::new("terraform")
        .args(["fmt", "-check", "-recursive", "-diff"])
        .arg(workspace().join("deploy")));
}

/// The text inside the braces that open right after `start` in `text`.
fn block<'a>(text: &'a str, start: &str) -> &'a str {
    let open = text.find(start).unwrap_or_else(|| panic!("no {start:?}")) + start.len();
    let open = open + text[open..].find('{').expect("a block") + 1;
    let mut depth = 1;
    for (at, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            return &text[open..open + at];
        }
    }
    panic!("the block after {start:?} is not closed")
}

/// The quoted words of every `actions = [...]` in `text`.
fn terraform_actions(text: &str) -> BTreeSet<String> {
    let list = Regex::new(r"actions\s*=\s*\[([^\]]*)\]").expect("a valid regex");
    let word = Regex::new(r#""([^"]+)""#).expect("a valid regex");
    list.captures_iter(text)
        .flat_map(|c| {
            word.captures_iter(c.get(1).expect("a list").as_str())
                .map(|w| w[1].to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The names of the top-level `<kind> "<name>"` blocks of a Terraform file.
fn block_names(kind: &str, text: &str) -> BTreeSet<String> {
    let name = Regex::new(&format!(r#"(?m)^{kind} "([a-z_]+)""#)).expect("a valid regex");
    name.captures_iter(text).map(|c| c[1].to_owned()).collect()
}

/// With no provider to download, `terraform validate` cannot run here: at
/// least the Lambda example passes the module only variables it declares,
/// every one it requires, and uses only outputs it has.
#[test]
fn the_lambda_example_calls_the_module_with_its_variables_and_outputs() {
    let variables = read("deploy/terraform/variables.tf");
    let declared = block_names("variable", &variables);
    let required: BTreeSet<String> = declared
        .iter()
        .filter(|name| !block(&variables, &format!("variable \"{name}\"")).contains("default"))
        .cloned()
        .collect();
    let outputs = block_names("output", &read("deploy/terraform/outputs.tf"));

    let example = read("deploy/lambda/terraform/main.tf");
    let call = block(&example, r#"module "queue""#);
    assert!(call.contains(r#"source = "../../terraform""#), "{call}");
    let argument = Regex::new(r"(?m)^\s*([a-z_]+)\s*=").expect("a valid regex");
    let passed: BTreeSet<String> = argument
        .captures_iter(call)
        .map(|c| c[1].to_owned())
        .filter(|name| !["source", "count"].contains(&name.as_str()))
        .collect();
    assert!(
        passed.is_subset(&declared),
        "{passed:?} not all in {declared:?}"
    );
    assert!(
        required.is_subset(&passed),
        "{required:?} not all in {passed:?}"
    );
    let used = Regex::new(r"module\.queue\[0\]\.([a-z_]+)").expect("a valid regex");
    for used in used.captures_iter(&example) {
        assert!(
            outputs.contains(&used[1]),
            "module output {} is not declared",
            &used[1]
        );
    }
}

/// The policy document's statements: those always there, and those the
/// variables add (`dynamic "statement"`).
fn terraform_policy() -> (BTreeSet<String>, BTreeSet<String>) {
    let main = read("deploy/terraform/main.tf");
    let document = block(&main, r#"data "aws_iam_policy_document" "s3logd""#);
    let mut optional = BTreeSet::new();
    let mut fixed = document.to_owned();
    while let Some(at) = fixed.find(r#"dynamic "statement""#) {
        let inner = block(&fixed[at..], r#"dynamic "statement""#).to_owned();
        optional.extend(terraform_actions(&inner));
        let end = at + fixed[at..].find(&inner).expect("the block is there") + inner.len() + 1;
        fixed.replace_range(at..end, "");
    }
    (terraform_actions(&fixed), optional)
}

#[test]
fn the_terraform_policy_grants_what_readme_lists_and_nothing_more() {
    let readme = read("README.md");
    let minimal = &readme[readme
        .find("Minimal IAM policy")
        .expect("README's minimal policy")..];
    let json = &minimal[minimal.find("```json").expect("a JSON block") + 7..];
    let policy: Value = serde_json::from_str(&json[..json.find("```").expect("closed")])
        .expect("README's minimal policy is JSON");
    let readme_minimal: BTreeSet<String> = policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .flat_map(|s| match &s["Action"] {
            Value::String(action) => vec![action.clone()],
            Value::Array(actions) => actions
                .iter()
                .map(|a| a.as_str().expect("an action").to_owned())
                .collect(),
            other => panic!("Action is {other}"),
        })
        .collect();

    // README's table of what each store adds: `| … | `service:Action`, … |`.
    let stores = &readme[readme
        .find("Permissions the stores add")
        .expect("README's table of the stores' permissions")..];
    let table: Vec<&str> = stores
        .lines()
        .map(str::trim)
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .collect();
    let action = Regex::new(r"`([a-z0-9]+:[A-Za-z]+)`").expect("a valid regex");
    let readme_stores: BTreeSet<String> = action
        .captures_iter(&table.join("\n"))
        .map(|c| c[1].to_owned())
        .collect();

    let (fixed, optional) = terraform_policy();
    assert_eq!(fixed, readme_minimal);
    assert_eq!(optional, readme_stores);
    assert!(fixed.is_disjoint(&optional));
}

/// The metric names `text` queries.
fn queried_metrics(text: &str) -> BTreeSet<String> {
    Regex::new(r"\bs3logd_[a-z_]+")
        .expect("a valid regex")
        .find_iter(text)
        .map(|m| m.as_str().to_owned())
        .collect()
}

#[tokio::test]
async fn the_dashboard_and_the_alerts_query_only_metrics_s3logd_exports() {
    let dashboard_text = read("deploy/monitoring/grafana-dashboard.json");
    let dashboard: Value = serde_json::from_str(&dashboard_text).expect("the dashboard is JSON");
    let alerts_text = read("deploy/monitoring/alerts.yaml");
    let alerts = yaml_documents(alerts_text.as_bytes());
    let rules: Vec<&Value> = alerts[0]["groups"]
        .as_array()
        .expect("rule groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules"))
        .collect();
    assert!(!rules.is_empty());
    for rule in &rules {
        assert!(
            rule["alert"].is_string() && rule["expr"].is_string(),
            "{rule}"
        );
        assert!(rule["labels"]["severity"].is_string(), "{rule}");
        assert!(rule["annotations"]["summary"].is_string(), "{rule}");
    }
    let panels = dashboard["panels"].as_array().expect("panels");
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let targets = panel["targets"].as_array().expect("a panel queries");
        assert!(!targets.is_empty(), "{}", panel["title"]);
    }

    // A collector that stored one object, so that every series exists.
    let harness = Harness::start(Notify::Nothing, Duration::from_secs(300)).await;
    let object = harness.upload_alb(&alb_key(1), 1, 10).await;
    let collector = harness.run(&harness.settings()).await;
    harness
        .send_message(&s3_event("ObjectCreated:Put", BUCKET, &object.key))
        .await;
    collector
        .wait_for_metric("s3logd_objects_processed_total", 1.0)
        .await;
    let exported = collector.metrics().await.0;
    let families: BTreeSet<(String, String)> = exported
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .map(|rest| {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            (name.to_owned(), kind.to_owned())
        })
        .collect();
    let exports = |name: &str| {
        families.iter().any(|(family, kind)| {
            family == name
                || (kind == "histogram"
                    && ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|suffix| name.strip_suffix(suffix) == Some(family.as_str())))
        })
    };

    let dashboard_metrics = queried_metrics(&dashboard_text);
    let alert_metrics = queried_metrics(&alerts_text);
    assert!(dashboard_metrics.len() >= 20, "{dashboard_metrics:?}");
    for (what, metrics) in [
        ("the dashboard", dashboard_metrics),
        ("the alerts", alert_metrics),
    ] {
        let missing: Vec<&String> = metrics.iter().filter(|m| !exports(m)).collect();
        assert!(
            missing.is_empty(),
            "{what} queries {missing:?}, which /metrics does not export:\n{exported}"
        );
    }
}
