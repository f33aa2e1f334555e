//! `check PREDICATE`: the model gathers facts with read-only commands and decides; the exit
//! code is the verdict as 0.11.6 gives it (0 true, 1 false, 2 poorly posed, 3 cannot
//! determine), in direct mode and through our server. A command that could change the cluster
//! is refused, and `features.check_max_iterations` bounds a model that never decides.

use vibectl::config::generated::client::key;

use super::scripted::{CHECK, MEMORY, command, done, in_both_modes, prompts_with, step};
use crate::support::mock::MockProvider;
use crate::support::yaml;

const NO_MEMORY: &str = "memory:\n  enabled: false\n";

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

#[test]
fn the_exit_code_is_the_verdict_in_both_modes() {
    let cases: [(Option<i64>, i32, &str); 4] = [
        (Some(0), 0, "True: both pods run"),
        (Some(1), 1, "False: both pods run"),
        (Some(2), 2, "Poorly posed: both pods run"),
        (Some(3), 3, "Cannot determine: both pods run"),
    ];
    for (code, exit, shown) in cases {
        let replies = [command(&["get", "pods"]), done(code, "both pods run")];
        in_both_modes(&[(CHECK, &replies)], NO_MEMORY, |mode, client, mock| {
            let out = client.run(&["check", "all pods are running"]);
            assert_eq!(out.status.code(), Some(exit), "{mode:?}\n{out}");
            assert_eq!(out.stdout, format!("{shown}\n"), "{mode:?}\n{out}");
            assert_eq!(client.kubectl_runs(), ["get pods"], "{mode:?}");
            // The second step saw the first command's output.
            let steps = block_on(prompts_with(mock, CHECK));
            assert_eq!(steps.len(), 2, "{mode:?}");
            assert!(steps[1].contains("web-2"), "{mode:?}: {}", steps[1]);
            assert!(!steps[0].contains("web-2"), "{mode:?}");
        });
    }
}

#[test]
fn an_empty_predicate_is_poorly_posed_and_a_model_failure_cannot_determine() {
    let replies = [done(Some(0), "x")];
    in_both_modes(&[(CHECK, &replies)], NO_MEMORY, |mode, client, _| {
        let out = client.run(&["check"]);
        assert_eq!(out.status.code(), Some(2), "{mode:?}\n{out}");
        assert!(out.stderr.contains("needs a predicate"), "{out}");
    });
    // An answer that is not a step, twice (the corrective retry): exit 3, nothing run.
    let replies = ["not json".to_owned()];
    in_both_modes(&[(CHECK, &replies)], NO_MEMORY, |mode, client, _| {
        let out = client.run(&["check", "pods run"]);
        assert_eq!(out.status.code(), Some(3), "{mode:?}\n{out}");
        assert!(out.stderr.contains("even after a retry"), "{out}");
        assert!(client.kubectl_runs().is_empty());
    });
}

#[test]
fn a_command_that_can_change_the_cluster_is_refused_with_exit_3() {
    let replies = [command(&["delete", "pod", "web-1"]), done(Some(0), "gone")];
    in_both_modes(&[(CHECK, &replies)], NO_MEMORY, |mode, client, _| {
        let out = client.run(&["--yes", "check", "web-1 can be deleted"]);
        assert_eq!(out.status.code(), Some(3), "{mode:?}\n{out}");
        assert!(
            out.stderr.contains(
                "check runs only read-only commands; the model planned `kubectl delete pod web-1`: `delete` can change the cluster"
            ),
            "{out}"
        );
        assert!(client.kubectl_runs().is_empty(), "nothing ran");
    });
}

#[test]
fn check_max_iterations_bounds_a_model_that_never_decides() {
    let replies = [command(&["get", "pods"])];
    for max in [2, 3] {
        let extra = format!(
            "{NO_MEMORY}{}",
            yaml::config(&[(key::FEATURES_CHECK_MAX_ITERATIONS, max.to_string())])
        );
        in_both_modes(&[(CHECK, &replies)], &extra, |mode, client, _| {
            let out = client.run(&["check", "pods run"]);
            assert_eq!(out.status.code(), Some(3), "{mode:?}\n{out}");
            assert!(
                out.stderr.contains(&format!("within {max} iterations")),
                "{out}"
            );
            assert!(
                out.stderr.contains(key::FEATURES_CHECK_MAX_ITERATIONS),
                "{out}"
            );
            assert_eq!(client.kubectl_runs().len(), max, "{mode:?}");
        });
    }
}

#[test]
fn show_iterations_and_show_memory_print_before_each_step() {
    let replies = [command(&["get", "pods"]), done(Some(0), "yes")];
    let memory = ["two pods in shop".to_owned()];
    let rules: [(&str, &[String]); 2] = [(MEMORY, &memory), (CHECK, &replies)];
    let on = "memory_content: pods live in shop\n";
    in_both_modes(&rules, on, |mode, client, _| {
        let out = client.run(&["check", "pods run"]);
        assert_eq!(out.status.code(), Some(0), "{mode:?}\n{out}");
        assert!(out.stderr.contains("Iteration 1/10"), "{out}");
        assert!(out.stderr.contains("Iteration 2/10"), "{out}");
        assert!(out.stderr.contains("Memory:\npods live in shop"), "{out}");
        // The second step shows the memory as the first step's update left it.
        assert!(out.stderr.contains("Memory:\ntwo pods in shop"), "{out}");
        assert!(client.text().contains("two pods in shop"), "memory saved");
    });
    let off = format!(
        "memory_content: pods live in shop\n{}",
        yaml::config(&[
            (key::DISPLAY_SHOW_ITERATIONS, "false"),
            (key::DISPLAY_SHOW_MEMORY, "false"),
        ])
    );
    in_both_modes(&rules, &off, |mode, client, _| {
        let out = client.run(&["check", "pods run"]);
        assert_eq!(out.status.code(), Some(0), "{mode:?}\n{out}");
        assert!(!out.stderr.contains("Iteration"), "{out}");
        assert!(!out.stderr.contains("Memory:"), "{out}");
    });
}

#[test]
fn a_thought_is_shown_and_carried_to_the_next_step() {
    let replies = [
        step(serde_json::json!({"action_type": "THOUGHT", "text": "look at shop first"})),
        done(Some(1), "no"),
    ];
    in_both_modes(
        &[(CHECK, &replies)],
        NO_MEMORY,
        |mode, client, mock: &MockProvider| {
            let out = client.run(&["check", "pods run"]);
            assert_eq!(out.status.code(), Some(1), "{mode:?}\n{out}");
            assert!(out.stderr.contains("Thought: look at shop first"), "{out}");
            let steps = block_on(prompts_with(mock, CHECK));
            assert!(steps[1].contains("look at shop first"), "{}", steps[1]);
        },
    );
}
