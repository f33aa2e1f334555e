//! The recovery prompt: kubectl failed, and the model is asked why and what to do next. Its
//! answer is printed and folded into the memory, as vibectl 0.11.6 does.

/// The task of a recovery answer, within `max_chars` characters.
pub fn task(max_chars: usize) -> String {
    format!(
        "A kubectl command failed. From its error output, say in a few short lines what most \
         likely went wrong and what to try next, most likely fix first, with the exact kubectl \
         command when one helps (a wrong name, namespace or flag; a missing resource; missing \
         permissions; an unreachable cluster). Do not invent facts the error does not support. \
         Keep the answer under {max_chars} characters."
    )
}

/// The user fragments: the command, its error output, and the plan's explanation if any.
pub fn user(command: &str, error: &str, explanation: Option<&str>) -> Vec<String> {
    let error = if error.trim().is_empty() {
        "(kubectl printed no error message)"
    } else {
        error.trim_end()
    };
    let mut out = vec![
        format!("The command that failed: {command}"),
        format!("Its error output:\n<output>\n{error}\n</output>"),
    ];
    if let Some(e) = explanation.map(str::trim).filter(|e| !e.is_empty()) {
        out.push(format!("Why it was planned: {e}"));
    }
    out
}
