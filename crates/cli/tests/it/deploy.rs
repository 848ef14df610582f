//! `deploy/` against the running binaries: every metric the Grafana dashboards
//! (`deploy/grafana/*.json`) and the Prometheus alert rules (`deploy/prometheus/alerts.yml`)
//! query is one that `wa-onboard ingress` or `wa-onboard worker` actually exports (scraped
//! from their `/metrics` after a signed webhook went through), or, for `rabbitmq_*`, one that
//! RabbitMQ's prometheus plugin exports (`deploy/prometheus/rabbitmq-metrics.txt`).
//!
//! Needs RabbitMQ (`AMQP_URL`, default `amqp://guest:guest@127.0.0.1:5672/%2f`) and Redis;
//! the run uses its own exchange/queue prefix and Redis key prefix and removes both.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::helpers::*;
use promql_parser::{
    parser::Expr,
    util::{ExprVisitor, walk_expr},
};

const APP_SECRET: &str = "deploy-test-app-secret";
/// How long the worker may take to process the webhook through a failed token fetch, a
/// delay tier and the DLQ (about 5 s of in-process Graph retries per attempt).
const METRICS_DEADLINE: Duration = Duration::from_secs(60);
/// The only delay tier of the worker under test, so a change reaches the DLQ quickly.
const RETRY_DELAY: Duration = Duration::from_secs(1);

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

// ------------------------------------------------------------------ queried metric names

/// Grafana's interval variables, replaced by a duration so that the query parses as PromQL.
const GRAFANA_INTERVALS: [(&str, &str); 3] = [
    ("$__rate_interval", "5m"),
    ("$__interval", "1m"),
    ("$__range", "1h"),
];

/// The names of the series selectors (`name{...}`, `name{...}[5m]`) of a PromQL expression
/// that start with one of `prefixes`, as promql-parser reads it. A query that does not parse
/// fails the test.
fn promql_metric_names(expr: &str, prefixes: &[&str], out: &mut BTreeSet<String>) {
    struct Names<'a> {
        prefixes: &'a [&'a str],
        out: &'a mut BTreeSet<String>,
    }
    impl ExprVisitor for Names<'_> {
        type Error = std::convert::Infallible;
        fn pre_visit(&mut self, expr: &Expr) -> Result<bool, Self::Error> {
            let selector = match expr {
                Expr::VectorSelector(vs) => Some(vs),
                Expr::MatrixSelector(ms) => Some(&ms.vs),
                _ => None,
            };
            if let Some(name) = selector.and_then(|vs| vs.name.as_ref())
                && self.prefixes.iter().any(|p| name.starts_with(p))
            {
                self.out.insert(name.clone());
            }
            Ok(true)
        }
    }
    let query = GRAFANA_INTERVALS
        .iter()
        .fold(expr.to_owned(), |q, (var, value)| q.replace(var, value));
    let ast = promql_parser::parser::parse(&query)
        .unwrap_or_else(|e| panic!("not PromQL: {query:?}: {e}"));
    let Ok(_) = walk_expr(&mut Names { prefixes, out }, &ast);
}

/// Every string under a key `expr`, anywhere in a Grafana dashboard.
fn dashboard_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", serde_json::Value::String(expr)) => out.push(expr.clone()),
                    _ => dashboard_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
}

/// A Prometheus rules file, as far as this test reads it.
#[derive(serde::Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(serde::Deserialize)]
struct RuleGroup {
    rules: Vec<Rule>,
}

#[derive(serde::Deserialize)]
struct Rule {
    expr: String,
}

/// The `expr` of every rule (alerting or recording) of a Prometheus rules file.
fn rule_exprs(yaml: &str) -> Vec<String> {
    let file: RuleFile =
        serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("not a rules file: {e}"));
    file.groups
        .into_iter()
        .flat_map(|g| g.rules)
        .map(|r| r.expr.trim().to_owned())
        .collect()
}

/// Metric names starting with `wa_` or `rabbitmq_` that the dashboards and the alert rules
/// query, each with the files that query it.
fn queried_metrics() -> BTreeMap<String, BTreeSet<String>> {
    let dir = deploy_dir();
    let mut sources: Vec<(String, Vec<String>)> = Vec::new();
    let grafana = dir.join("grafana");
    let mut dashboards: Vec<PathBuf> = std::fs::read_dir(&grafana)
        .expect("read deploy/grafana")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    dashboards.sort();
    assert!(
        !dashboards.is_empty(),
        "no dashboard in {}",
        grafana.display()
    );
    for path in dashboards {
        let text = std::fs::read_to_string(&path).expect("read dashboard");
        let json: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        let mut exprs = Vec::new();
        dashboard_exprs(&json, &mut exprs);
        sources.push((format!("deploy/grafana/{}", file_name(&path)), exprs));
    }
    let alerts = dir.join("prometheus/alerts.yml");
    let text = std::fs::read_to_string(&alerts).expect("read deploy/prometheus/alerts.yml");
    sources.push(("deploy/prometheus/alerts.yml".to_owned(), rule_exprs(&text)));

    let mut queried: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (source, exprs) in sources {
        assert!(!exprs.is_empty(), "{source}: no query found");
        for expr in exprs {
            let mut names = BTreeSet::new();
            promql_metric_names(&expr, &["wa_", "rabbitmq_"], &mut names);
            for name in names {
                queried.entry(name).or_default().insert(source.clone());
            }
        }
    }
    queried
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned()
}

/// The names in `deploy/prometheus/rabbitmq-metrics.txt` (one a line, `#` comments).
fn rabbitmq_metrics() -> BTreeSet<String> {
    let path = deploy_dir().join("prometheus/rabbitmq-metrics.txt");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

// ------------------------------------------------------------------------ exported names

/// Every series name a Prometheus scrape of `text` can yield: the samples present, and for
/// each `# TYPE` family the names its type produces (a histogram's `_bucket`, `_sum`,
/// `_count`; a counter's `_total`).
fn exported_names(text: &str, out: &mut BTreeSet<String>) {
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            let suffixes: &[&str] = match kind {
                "counter" => &["_total", "_created"],
                "histogram" | "gaugehistogram" => &["_bucket", "_sum", "_count", "_created"],
                "summary" => &["", "_sum", "_count", "_created"],
                "info" => &["_info"],
                _ => &[""],
            };
            out.extend(suffixes.iter().map(|s| format!("{name}{s}")));
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            out.insert(line[..end].to_owned());
        }
    }
}

/// Whether a queried name is exported: as it is, or, for `_bucket`/`_sum`/`_count`, as the
/// series of a histogram family.
fn is_exported(name: &str, exported: &BTreeSet<String>) -> bool {
    exported.contains(name)
        || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix).is_some_and(|base| {
                ["_bucket", "_sum", "_count"]
                    .iter()
                    .all(|s| exported.contains(&format!("{base}{s}")))
            })
        })
}

#[tokio::test]
async fn dashboards_and_alerts_query_only_exported_metrics() {
    let queried = queried_metrics();
    let wa: BTreeSet<&String> = queried.keys().filter(|n| n.starts_with("wa_")).collect();
    let rabbit: BTreeSet<&String> = queried
        .keys()
        .filter(|n| n.starts_with("rabbitmq_"))
        .collect();
    // The parsers found the queries (a silent empty set would prove nothing).
    assert!(
        wa.len() >= 10 && rabbit.len() >= 3,
        "too few metric names found: wa_ {wa:?}, rabbitmq_ {rabbit:?}"
    );

    // RabbitMQ: against the plugin's documented names.
    let documented = rabbitmq_metrics();
    let undocumented: Vec<String> = rabbit
        .iter()
        .filter(|n| !documented.contains(n.as_str()))
        .map(|n| format!("{n} (in {:?})", queried[n.as_str()]))
        .collect();
    assert!(
        undocumented.is_empty(),
        "queried but not exported by RabbitMQ's prometheus plugin \
         (deploy/prometheus/rabbitmq-metrics.txt): {undocumented:#?}"
    );

    // The binaries: run both, put one signed webhook through, scrape.
    let tenants = TestTenants::new().await;
    let prefix = format!("wa-deploy-test-{:016x}", rand::random::<u64>());
    let http = reqwest::Client::new();

    let cmd = ingress_cmd(APP_SECRET, &amqp_url(), &prefix);
    let mut ingress = Role::start("ingress", cmd).await;

    // Every connection here is refused: every token fetch fails transiently, so the change
    // goes through the in-process retries, the delay tier and the DLQ, and every worker
    // counter exists.
    let graph = wa_testkit::RefusedAddr::bind();
    let graph_base = format!("http://{}", graph.addr);
    let cmd = worker_cmd(
        APP_SECRET,
        &tenants,
        &graph_base,
        &amqp_url(),
        &prefix,
        RETRY_DELAY,
    );
    let mut worker = Role::start("worker", cmd).await;

    ingress.wait_ready(&http).await;
    worker.wait_ready(&http).await;

    let body = install_fixture();
    let webhook = format!("{}/webhooks/whatsapp", ingress.base());
    let signed = post_signed(&http, &webhook, APP_SECRET, body.clone()).await;
    assert_eq!(signed.status(), 200, "signed webhook");
    // And one without a signature, so the signature failure counter has a series.
    let unsigned = http
        .post(&webhook)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("POST the unsigned webhook");
    assert_eq!(unsigned.status(), 401, "unsigned webhook");

    // Counters with labels appear once they were first incremented: poll until every queried
    // name is there or the deadline passes, then report what is missing.
    let until = Instant::now() + METRICS_DEADLINE;
    let missing = loop {
        let mut exported = BTreeSet::new();
        exported_names(&ingress.metrics(&http).await, &mut exported);
        exported_names(&worker.metrics(&http).await, &mut exported);
        let missing: Vec<String> = wa
            .iter()
            .filter(|n| !is_exported(n, &exported))
            .map(|n| format!("{n} (in {:?})", queried[n.as_str()]))
            .collect();
        if missing.is_empty() || Instant::now() >= until {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    ingress.stop().await;
    worker.stop().await;
    let mut topology = wa_broker::Topology::new(prefix);
    topology.retry_delays = vec![RETRY_DELAY];
    delete_topology(&amqp_url(), topology).await;
    drop(tenants);

    assert!(
        missing.is_empty(),
        "queried by deploy/ but exported by neither wa-onboard ingress nor worker \
         within {METRICS_DEADLINE:?}: {missing:#?}"
    );
}

#[test]
fn promql_names_skip_strings_labels_ranges_and_numbers() {
    let mut names = BTreeSet::new();
    promql_metric_names(
        r#"histogram_quantile(0.99, sum by (le) (rate(wa_a_seconds_bucket{queue=~"wa_x|rabbitmq_y",le!="1e-9"}[5m])))
           / clamp_min(sum(rabbitmq_queue_messages_ready{queue="wa.account_update"}), 1e-3)
           or absent(wa_b_total) and on() vector(1) > 0.5"#,
        &["wa_", "rabbitmq_"],
        &mut names,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        [
            "rabbitmq_queue_messages_ready",
            "wa_a_seconds_bucket",
            "wa_b_total"
        ]
    );
}

#[test]
fn rule_exprs_read_inline_and_block_scalars() {
    let yaml = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: wa_a > 0\n        for: 5m\n      - alert: B\n        expr: >-\n          sum(wa_b)\n          / sum(wa_c) > 1\n        labels:\n          severity: warning\n      - expr: 'wa_d == 0'\n        record: r\n";
    assert_eq!(
        rule_exprs(yaml),
        ["wa_a > 0", "sum(wa_b) / sum(wa_c) > 1", "wa_d == 0"]
    );
}

#[test]
fn exported_names_follow_the_family_types() {
    let text = "# TYPE wa_x counter\n# TYPE wa_h histogram\nwa_h_sum 0.0\nwa_g{a=\"1\"} 2\n# EOF\n";
    let mut names = BTreeSet::new();
    exported_names(text, &mut names);
    for name in ["wa_x_total", "wa_h_bucket", "wa_h_count", "wa_g"] {
        assert!(is_exported(name, &names), "{name} in {names:?}");
    }
    assert!(!is_exported("wa_x", &names));
    assert!(!is_exported("wa_g_bucket", &names));
}
