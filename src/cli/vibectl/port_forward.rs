//! `port-forward ARGS`: run `kubectl port-forward` with the live display until it ends or the
//! user stops it, then summarize the session. With `networking.intermediate_port_range` set,
//! kubectl forwards to a port of that range and a local relay listens on the port the user
//! asked for, counting connections and bytes for the summary. `port-forward vibe "<request>"`
//! plans the arguments.

use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinSet;

use super::kube::KubeArgs;
use super::relay::{self, PortRange, Stats};
use super::session::{Ctx, Session};
use super::{kubectl, live, plan};
use crate::cli::vibectl::setup_proxy::block_on;
use crate::cli::{CmdError, CmdResult, out, warn};
use crate::config::generated::client::key;
use crate::prompts;

const VERB: &str = "port-forward";

/// kubectl flags of port-forward (and global ones) that take the next word as their value.
const VALUE_FLAGS: &[&str] = &[
    "-n",
    "--namespace",
    "--address",
    "--pod-running-timeout",
    "--context",
    "--cluster",
    "--user",
    "--kubeconfig",
    "-s",
    "--server",
    "--token",
    "--as",
    "--as-group",
    "--request-timeout",
    "-v",
    "--v",
];

pub fn run(ctx: &Ctx, args: &KubeArgs) -> CmdResult {
    block_on(async {
        let mut session = Session::open(ctx)?;
        if args.args.first().map(String::as_str) == Some("vibe") {
            let (yes, request) = plan::split_request(&args.args[1..]);
            if request.trim().is_empty() {
                return Err(
                    CmdError::new(format!("`{VERB} vibe` needs a request")).with_hint(format!(
                        "vibectl {VERB} vibe \"port 8080 of pod web to my 8080\""
                    )),
                );
            }
            let req = prompts::port_forward::plan_request(&request, &session.context());
            let plan = plan::ask(&session, req).await?;
            if yes {
                session.policy.yes = true;
            }
            return plan::carry_out(&session, plan, Some(&request), Some(VERB)).await;
        }
        let mut full = vec![VERB.to_owned()];
        full.extend(args.args.iter().cloned());
        let line = kubectl::display(&full);
        session.policy.allow(&full)?;
        if session.cfg.display.show_kubectl {
            out(&crate::cli::style::command_line(&line));
        }
        forward(&session, &line, &full, None, false).await
    })?
}

/// A port mapping of the command: where it is among the arguments, and its ports (local 0:
/// any free port).
struct Mapping {
    index: usize,
    local: u16,
    remote: u16,
}

/// The port mappings of `port-forward RESOURCE PORTS... FLAGS` (`args` verb first), and whether
/// `--address` was given.
fn mappings(args: &[String]) -> Result<(Vec<Mapping>, bool), CmdError> {
    let mut found = Vec::new();
    let mut address = false;
    let mut positional = 0;
    let mut i = 1;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--" {
            break;
        }
        if a.starts_with('-') {
            address |= a == "--address" || a.starts_with("--address=");
            if VALUE_FLAGS.contains(&a) {
                i += 1;
            }
        } else {
            positional += 1;
            if positional > 1 {
                found.push(mapping(i, a)?);
            }
        }
        i += 1;
    }
    Ok((found, address))
}

fn mapping(index: usize, spec: &str) -> Result<Mapping, CmdError> {
    let port = |s: &str| s.parse::<u16>().ok();
    let (local, remote) = match spec.split_once(':') {
        Some(("", r)) => (Some(0), port(r)),
        Some((l, r)) => (port(l), port(r)),
        None => (port(spec), port(spec)),
    };
    match (local, remote) {
        (Some(local), Some(remote)) if remote > 0 => Ok(Mapping {
            index,
            local,
            remote,
        }),
        _ => Err(CmdError::new(format!(
            "`{spec}` is not a port mapping: expected LOCAL:REMOTE, PORT or :REMOTE"
        ))
        .with_hint("vibectl port-forward pod/web 8080:80")),
    }
}

/// Run `real` (shown as `line`, verb first) with the relay when the range is set, until kubectl
/// ends or the user stops it; print the session's numbers and summarize them.
pub async fn forward(
    session: &Session,
    line: &str,
    real: &[String],
    request: Option<&str>,
    planned: bool,
) -> CmdResult {
    let (maps, address) = mappings(real)?;
    let range = session
        .cfg
        .networking
        .intermediate_port_range
        .as_deref()
        .filter(|r| !r.trim().is_empty())
        .map(PortRange::parse)
        .transpose()?;
    let opts = live::Options::from_config(&session.cfg, real)?;
    let stats = Arc::new(Stats::default());
    let mut tasks = JoinSet::new();
    let mut args = real.to_vec();
    let mut routes = Vec::new();
    match range {
        Some(range) if !maps.is_empty() && !address => {
            let mut taken = Vec::new();
            let mut listeners = Vec::new();
            for m in &maps {
                let (listener, addr) = relay::listen(m.local).await?;
                taken.push(addr.port());
                let inter = range.free_port(&taken)?;
                taken.push(inter);
                args[m.index] = format!("{inter}:{}", m.remote);
                routes.push(format!(
                    "127.0.0.1:{} -> relay -> kubectl on 127.0.0.1:{inter} -> remote port {}",
                    addr.port(),
                    m.remote
                ));
                listeners.push((listener, inter));
            }
            for (listener, inter) in listeners {
                relay::run(&mut tasks, listener, inter, stats.clone());
            }
            for r in &routes {
                eprintln!("Forwarding {r}");
            }
        }
        Some(_) if address => warn(&format!(
            "traffic is not watched: --address is given, and the relay of {} listens on 127.0.0.1 only",
            key::NETWORKING_INTERMEDIATE_PORT_RANGE
        )),
        None if !maps.is_empty() && session.cfg.warnings.warn_no_proxy => warn(&format!(
            "traffic is not watched: {} is not set (vibectl config set {} 10000-11000; {} false hides this warning)",
            key::NETWORKING_INTERMEDIATE_PORT_RANGE,
            key::NETWORKING_INTERMEDIATE_PORT_RANGE,
            key::WARNINGS_WARN_NO_PROXY
        )),
        _ => {}
    }
    let watched = !routes.is_empty();

    let started = Instant::now();
    let mut live = live::Live::start(opts);
    let followed = kubectl::follow(&session.cfg, &args, &mut live).await;
    live.finish();
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let code = followed.as_ref().ok().and_then(|f| f.code);
    session.guard.audit_run(line, planned, true, code)?;
    let followed = followed?;
    if followed.interrupted {
        eprintln!();
    }

    let status = if followed.interrupted {
        "stopped by the user"
    } else {
        "kubectl exited"
    };
    let secs = started.elapsed().as_secs_f64();
    let (conns, sent, received) = (
        Stats::get(&stats.connections),
        Stats::get(&stats.bytes_sent),
        Stats::get(&stats.bytes_received),
    );
    let errors = stats.errors();
    let mut text = format!(
        "command: {line}\nduration: {secs:.1}s\nstatus: {status}\ntraffic_watched: {watched}\n"
    );
    for r in &routes {
        text.push_str(&format!("route: {r}\n"));
    }
    if watched {
        text.push_str(&format!(
            "connections: {conns}\nbytes_sent: {sent}\nbytes_received: {received}\n"
        ));
    }
    if !errors.is_empty() {
        text.push_str(&format!("errors: {}\n", errors.join("; ")));
    }
    let numbers = if watched {
        format!(": {conns} connections, {sent} bytes sent, {received} bytes received")
    } else {
        String::new()
    };
    out(&format!(
        "Port-forward ended ({status}) after {secs:.1}s{numbers}\n"
    ));
    for e in &errors {
        warn(&format!("relay: {e}"));
    }

    let seen = live.seen();
    let summary = if session.cfg.display.show_vibe {
        let req = prompts::port_forward::summary(&text, &seen, request, &session.context());
        Some(session.show("summary", req).await?)
    } else {
        None
    };
    let mut news = String::new();
    if let Some(r) = request {
        news.push_str(&format!("The user asked: {r}\n"));
    }
    news.push_str(&format!("Ran: {line}\n{text}"));
    if let Some(s) = &summary {
        news.push_str(&format!("Result: {}", s.trim()));
    }
    session.remember(&news).await;
    session.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn mappings_are_found_after_the_resource_and_past_flag_values() {
        let (m, address) = mappings(&v(&[
            "port-forward",
            "-n",
            "shop",
            "pod/web",
            "8080:80",
            "9000",
            ":443",
        ]))
        .expect("ok");
        let got: Vec<_> = m.iter().map(|m| (m.index, m.local, m.remote)).collect();
        assert_eq!(got, [(4, 8080, 80), (5, 9000, 9000), (6, 0, 443)]);
        assert!(!address);
        let (_, address) =
            mappings(&v(&["port-forward", "svc/x", "1:2", "--address=0.0.0.0"])).expect("ok");
        assert!(address);
        assert!(mappings(&v(&["port-forward", "pod/web", "80:x"])).is_err());
    }
}
