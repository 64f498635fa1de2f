//! moto's server (a local AWS API emulator from PyPI) for tests of the real AWS SDK clients.
//!
//! Found through `CCP_TEST_PYTHON` (scripts/test.sh points it at the project venv). Without
//! it the caller's test is skipped with a message, except under `CI=true`, where it fails.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server on 127.0.0.1; stopped when dropped.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    pub url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts moto, or returns `None` (after saying so) when no Python with moto is configured.
#[allow(clippy::expect_used, clippy::panic)]
pub fn start(test: &str) -> Option<Moto> {
    let Ok(python) = std::env::var("CCP_TEST_PYTHON") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run {test}: set CCP_TEST_PYTHON to a Python with moto[server]"
        );
        eprintln!("SKIPPED: {test} (set CCP_TEST_PYTHON to a Python with moto[server])");
        return None;
    };
    // Port 0: moto says which port it got. A port picked here and bound by moto a second later
    // could be taken in between by another test's listener.
    let mut child = Command::new(python)
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start moto.server");
    let stderr = child.stderr.take().expect("moto's stderr");
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    // Reads moto's log to the end, so that moto never blocks on a full pipe.
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut said = Vec::new();
        let mut port_tx = Some(port_tx);
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(tx) = &port_tx {
                if let Some(port) = announced_port(&line) {
                    let _ = tx.send(Ok(port));
                    port_tx = None;
                } else {
                    said.push(line);
                }
            }
        }
        if let Some(tx) = port_tx {
            let _ = tx.send(Err(said.join("\n")));
        }
    });
    let port = match port_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(port)) => port,
        Ok(Err(said)) => panic!("moto exited before listening:\n{said}"),
        Err(_) => panic!("moto did not say where it listens within 30 s"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            panic!("moto did not start");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

/// The port of Werkzeug's ` * Running on http://127.0.0.1:PORT` line.
fn announced_port(line: &str) -> Option<u16> {
    let (_, rest) = line.split_once("Running on http://127.0.0.1:")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|&port| port != 0)
}

/// A CloudWatch client for moto at `url`, with moto's static test credentials.
pub fn cloudwatch_client(url: &str) -> aws_sdk_cloudwatch::Client {
    use aws_sdk_cloudwatch::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .endpoint_url(url)
        .build();
    aws_sdk_cloudwatch::Client::from_conf(config)
}

/// One statistic of a metric over the last and next hour, summed over its data points
/// (`None` without any): what CloudWatch reports for what was pushed.
#[allow(clippy::expect_used)]
pub async fn cloudwatch_statistic(
    client: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    name: &str,
    dimensions: &[(&str, &str)],
    statistic: aws_sdk_cloudwatch::types::Statistic,
) -> Option<f64> {
    use aws_sdk_cloudwatch::types::{Dimension, Statistic};
    let now = std::time::SystemTime::now();
    let hour = Duration::from_secs(3600);
    let mut call = client
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name(name)
        .start_time((now - hour).into())
        .end_time((now + hour).into())
        .period(7200)
        .statistics(statistic.clone());
    for (k, v) in dimensions {
        call = call.dimensions(Dimension::builder().name(*k).value(*v).build());
    }
    let out = call.send().await.expect("GetMetricStatistics");
    let values: Vec<f64> = out
        .datapoints()
        .iter()
        .filter_map(|p| match statistic {
            Statistic::SampleCount => p.sample_count(),
            Statistic::Maximum => p.maximum(),
            _ => p.sum(),
        })
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}
