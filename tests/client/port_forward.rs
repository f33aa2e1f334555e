//! `port-forward`: kubectl forwards to a port of `networking.intermediate_port_range` while the
//! relay listens on the user's port; bytes sent by a test client on 127.0.0.1 go through the
//! relay to the forwarded port (served by the test, standing in for the pod) and back, and the
//! summary the model is asked for carries the connection and byte counts. Range errors, the
//! direct mode with its warning (`warnings.warn_no_proxy`), and `port-forward vibe`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vibectl::config::generated::client::key;

use super::proxy::Server;
use super::{API_KEY, Client, LIMIT, plan_json, write_executable};
use crate::support::mock::MockProvider;
use crate::support::yaml;

/// A port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A fake kubectl for `port-forward RESOURCE LOCAL:REMOTE`: records its arguments and pid,
/// prints kubectl's line, and waits until it is stopped.
fn forwarding_kubectl(client: &Client) {
    let script = format!(
        "#!/bin/sh\n\
         printf '%s\\n' \"$*\" >> '{dir}/kubectl-args'\n\
         echo $$ > '{dir}/kubectl-pid'\n\
         echo \"Forwarding from 127.0.0.1:${{3%%:*}} -> ${{3##*:}}\"\n\
         exec sleep 600\n",
        dir = client.path().display()
    );
    write_executable(&client.kubectl(), &script);
}

/// A running `vibectl` whose stdout and stderr lines are collected as they come.
struct Running {
    child: Child,
    lines: mpsc::Receiver<(bool, String)>,
    stdout: Vec<String>,
    stderr: Vec<String>,
}

impl Running {
    fn start(client: &Client, args: &[&str]) -> Running {
        let mut child = client
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vibectl");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        for (is_out, pipe) in [
            (true, Box::new(out) as Box<dyn Read + Send>),
            (false, Box::new(err)),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if tx.send((is_out, line)).is_err() {
                        break;
                    }
                }
            });
        }
        Running {
            child,
            lines,
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    }

    /// Wait for a line of stdout (`on_stdout`) or stderr that contains `text`.
    fn wait_for(&mut self, on_stdout: bool, text: &str) {
        let deadline = Instant::now() + LIMIT;
        loop {
            let seen = if on_stdout {
                &self.stdout
            } else {
                &self.stderr
            };
            if seen.iter().any(|l| l.contains(text)) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((true, l)) => self.stdout.push(l),
                Ok((false, l)) => self.stderr.push(l),
                Err(_) => panic!(
                    "no line with {text:?} within {LIMIT:?}\nstdout: {:?}\nstderr: {:?}",
                    self.stdout, self.stderr
                ),
            }
        }
    }

    /// Ctrl-C, then wait for the end; whether it exited 0.
    fn interrupt(mut self) -> (bool, Vec<String>, Vec<String>) {
        let kill = std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill -INT");
        assert!(kill.success());
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((true, l)) => self.stdout.push(l),
                Ok((false, l)) => self.stderr.push(l),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!("vibectl did not end after Ctrl-C: {:?}", self.stdout);
                }
            }
        }
        let status = self.child.wait().expect("wait");
        (status.success(), self.stdout, self.stderr)
    }
}

/// Serve `count` connections on `listener`, echoing each until its client closes.
fn echo(listener: TcpListener, count: usize) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for _ in 0..count {
            let (mut conn, _) = listener.accept().expect("accept");
            conn.set_read_timeout(Some(LIMIT)).expect("timeout");
            let mut buf = [0u8; 4096];
            loop {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => conn.write_all(&buf[..n]).expect("echo"),
                }
            }
        }
    })
}

/// Send `payload` through 127.0.0.1:`port` and read until the far end closes.
fn round_trip(port: u16, payload: &[u8]) -> Vec<u8> {
    let mut conn = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect to the relay");
    conn.set_read_timeout(Some(LIMIT)).expect("timeout");
    conn.write_all(payload).expect("send");
    conn.shutdown(Shutdown::Write).expect("shutdown");
    let mut back = Vec::new();
    conn.read_to_end(&mut back).expect("read the echo");
    back
}

async fn prompts(mock: &MockProvider) -> Vec<String> {
    mock.requests()
        .await
        .iter()
        .map(|r| {
            r["body"]["messages"]
                .as_array()
                .expect("messages")
                .iter()
                .filter_map(|m| m["content"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

/// Bytes flow through the relay; Ctrl-C ends kubectl and the relay; the numbers are printed
/// and sent to the model.
async fn relay_counts_connections_and_bytes(proxied: bool) {
    let mock = MockProvider::start(&[
        "--reply",
        "Two connections went through.",
        "--api-key",
        API_KEY,
    ]);
    let mut client = Client::new("", "", 0);
    forwarding_kubectl(&client);
    let inter = free_port();
    let local = free_port();
    client.configure(
        &mock,
        false,
        &format!(
            "memory:\n  enabled: false\n{}",
            yaml::config(&[(
                key::NETWORKING_INTERMEDIATE_PORT_RANGE,
                format!("{inter}-{inter}")
            )])
        ),
    );
    let _server = if proxied {
        let server = Server::start(&mock);
        let url = format!(
            "vibectl-server-insecure://{}@{}",
            server.token(),
            server.addr
        );
        client
            .run(&["setup-proxy", "configure", "prod", &url])
            .assert_success();
        Some(server)
    } else {
        client.env = vec![("VIBECTL_OPENAI_API_KEY".into(), API_KEY.into())];
        None
    };

    let mut run = Running::start(
        &client,
        &["port-forward", "pod/web", &format!("{local}:80")],
    );
    run.wait_for(false, &format!("Forwarding 127.0.0.1:{local} -> relay"));
    // kubectl was given the intermediate port; the test serves it, as the pod would.
    run.wait_for(true, &format!("Forwarding from 127.0.0.1:{inter} -> 80"));
    assert_eq!(
        client.kubectl_runs(),
        [format!("port-forward pod/web {inter}:80")]
    );
    let pod = echo(
        TcpListener::bind((Ipv4Addr::LOCALHOST, inter)).expect("serve the pod port"),
        2,
    );

    let small = b"hello relay\n".to_vec();
    let big = vec![b'z'; 100_000];
    assert_eq!(round_trip(local, &small), small);
    assert_eq!(round_trip(local, &big), big);
    pod.join().expect("echo server");

    let (ok, stdout, stderr) = run.interrupt();
    assert!(ok, "stdout: {stdout:?}\nstderr: {stderr:?}");
    let total = small.len() + big.len();
    let numbers = format!("2 connections, {total} bytes sent, {total} bytes received");
    assert!(
        stdout.iter().any(
            |l| l.starts_with("Port-forward ended (stopped by the user) after")
                && l.ends_with(&numbers)
        ),
        "{stdout:?}"
    );
    assert_eq!(
        stdout.last().map(String::as_str),
        Some("Two connections went through.")
    );
    let sent = prompts(&mock).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].contains(&format!(
            "connections: 2\nbytes_sent: {total}\nbytes_received: {total}"
        )),
        "{}",
        sent[0]
    );
    assert!(
        sent[0].contains("kubectl port-forward pod/web"),
        "{}",
        sent[0]
    );

    // kubectl was stopped with vibectl, and the relay no longer listens.
    let pid = std::fs::read_to_string(client.path().join("kubectl-pid")).expect("kubectl pid");
    let alive = std::process::Command::new("kill")
        .args(["-0", pid.trim()])
        .stderr(Stdio::null())
        .status()
        .expect("kill -0");
    assert!(!alive.success(), "kubectl {pid} still runs");
    assert!(
        TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, local).into(), Duration::from_secs(5))
            .is_err()
    );
}

#[tokio::test]
async fn the_relay_counts_connections_and_bytes_direct() {
    relay_counts_connections_and_bytes(false).await;
}

#[tokio::test]
async fn the_relay_counts_connections_and_bytes_through_our_server() {
    relay_counts_connections_and_bytes(true).await;
}

#[tokio::test]
async fn a_malformed_or_fully_used_range_is_refused_naming_the_key() {
    let mock = MockProvider::start(&["--reply", "unused"]);
    let client = Client::new("", "", 0);
    forwarding_kubectl(&client);
    let range = |r: &str| {
        format!(
            "memory:\n  enabled: false\n{}",
            yaml::config(&[(key::NETWORKING_INTERMEDIATE_PORT_RANGE, r)])
        )
    };
    client.configure(&mock, true, &range("'9000-x'"));
    let out = client.fails(&["port-forward", "pod/web", "8080:80"]);
    assert!(
        out.stderr.contains(&format!(
            "{} is `9000-x`",
            key::NETWORKING_INTERMEDIATE_PORT_RANGE
        )),
        "{out}"
    );
    assert!(out.stderr.contains("hint: write it as MIN-MAX"), "{out}");

    let held = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = held.local_addr().expect("addr").port();
    client.configure(&mock, true, &range(&format!("{port}-{port}")));
    let out = client.fails(&["port-forward", "pod/web", &format!("{}:80", free_port())]);
    assert!(
        out.stderr.contains(&format!(
            "every port of {} ({port}-{port}) is in use",
            key::NETWORKING_INTERMEDIATE_PORT_RANGE
        )),
        "{out}"
    );

    // The user's own port taken: the relay cannot listen there.
    client.configure(&mock, true, &range("20000-20100"));
    let out = client.fails(&["port-forward", "pod/web", &format!("{port}:80")]);
    assert!(
        out.stderr
            .contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{out}"
    );
    assert!(client.kubectl_runs().is_empty(), "kubectl never ran");
    assert!(prompts(&mock).await.is_empty());
}

#[tokio::test]
async fn with_address_kubectl_forwards_directly_and_says_why() {
    let mock = MockProvider::start(&["--reply", "Forwarded."]);
    let client = Client::new("Forwarding from 0.0.0.0:8080 -> 80\n", "", 0);
    client.configure(
        &mock,
        true,
        &format!(
            "memory:\n  enabled: false\n{}",
            yaml::config(&[(key::NETWORKING_INTERMEDIATE_PORT_RANGE, "20000-20100")])
        ),
    );
    let out = client.run(&["port-forward", "pod/web", "8080:80", "--address", "0.0.0.0"]);
    out.assert_success();
    assert!(
        out.stderr
            .contains("traffic is not watched: --address is given"),
        "{out}"
    );
    assert_eq!(
        client.kubectl_runs(),
        ["port-forward pod/web 8080:80 --address 0.0.0.0"]
    );
}

#[tokio::test]
async fn without_a_range_kubectl_forwards_directly_and_warns_unless_told_not_to() {
    let mock = MockProvider::start(&["--reply", "Forwarded."]);
    let client = Client::new("Forwarding from 127.0.0.1:8080 -> 80\n", "", 0);
    client.configure(&mock, true, "memory:\n  enabled: false\n");
    let out = client.run(&["port-forward", "pod/web", "8080:80"]);
    out.assert_success();
    assert!(
        out.stderr.contains(&format!(
            "traffic is not watched: {} is not set",
            key::NETWORKING_INTERMEDIATE_PORT_RANGE
        )),
        "{out}"
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "Forwarding from 127.0.0.1:8080 -> 80", "{out}");
    assert!(
        lines[1].starts_with("Port-forward ended (kubectl exited) after "),
        "{out}"
    );
    assert!(
        !lines[1].contains("connections"),
        "not watched, not counted: {out}"
    );
    assert_eq!(lines[2], "Forwarded.", "{out}");
    assert_eq!(client.kubectl_runs(), ["port-forward pod/web 8080:80"]);

    client.configure(
        &mock,
        true,
        &format!(
            "memory:\n  enabled: false\n{}",
            yaml::config(&[(key::WARNINGS_WARN_NO_PROXY, "false")])
        ),
    );
    let out = client.run(&["port-forward", "pod/web", "8080:80"]);
    out.assert_success();
    assert!(!out.stderr.contains("traffic is not watched"), "{out}");
    let sent = prompts(&mock).await;
    assert!(sent[0].contains("traffic_watched: false"), "{}", sent[0]);
}

#[tokio::test]
async fn port_forward_vibe_plans_the_forward_and_summarizes_it() {
    let plan = plan_json(
        &["port-forward", "pod/web", "8080:80"],
        "forward the web pod",
    );
    let mock = MockProvider::start(&["--reply", &plan]);
    let client = Client::new(
        "Forwarding from 127.0.0.1:8080 -> 80\n[[mock:reply=The web pod was forwarded.]]\n",
        "",
        0,
    );
    client.configure(&mock, true, "memory:\n  enabled: false\n");
    let out = client.run(&["port-forward", "vibe", "the web pod on my 8080", "--yes"]);
    out.assert_success();
    assert!(
        out.stdout
            .starts_with("$ kubectl port-forward pod/web 8080:80\n  forward the web pod\n"),
        "{out}"
    );
    assert!(
        out.stdout.ends_with("The web pod was forwarded.\n"),
        "{out}"
    );
    assert_eq!(client.kubectl_runs(), ["port-forward pod/web 8080:80"]);
    let sent = prompts(&mock).await;
    assert_eq!(sent.len(), 2);
    assert!(sent[0].contains("the web pod on my 8080"), "{}", sent[0]);
    assert!(
        sent[0].contains("the resource (pod/NAME"),
        "the port-forward guide: {}",
        sent[0]
    );
    assert!(sent[1].contains("status: kubectl exited"), "{}", sent[1]);
}
