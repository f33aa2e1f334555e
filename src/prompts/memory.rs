//! The memory prompt: fold what just happened into the memory vibectl carries between
//! commands, within `memory.max_chars`.

/// The task of the memory update.
pub const TASK: &str = "Maintain the memory vibectl carries between commands: the user's \
goals and rules, the cluster facts found so far (namespaces, resource names, problems and \
their causes) and what was done, newest facts replacing older ones they contradict. Leave out \
the user's custom instructions (they are sent with every prompt anyway) and anything the next \
command will not need. Answer with the new memory text only: no preamble, no heading such as \
\"Updated memory:\", no markup.";

/// The user fragments: the memory now, the news, and the length limit.
pub fn user(current: &str, news: &str, max_chars: usize) -> Vec<String> {
    let current = if current.trim().is_empty() {
        "(empty)"
    } else {
        current.trim()
    };
    vec![
        format!("The memory now:\n<memory>\n{current}\n</memory>"),
        format!("What happened since:\n<news>\n{news}\n</news>"),
        format!("Write the updated memory in at most {max_chars} characters."),
    ]
}
