//! Shell completion. The scripts are thin: they hand the words typed so far to
//! `kubectl-grayscale __complete WORD... CURRENT`, which answers from the command tree and, for
//! task names, versions and namespaces, from the cluster. kubectl's own plugin completion
//! (kubectl 1.26+) calls `kubectl_complete-grayscale` the same way, in cobra's format.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::cluster::{ConnectOptions, Kube};
use crate::model::strategy::Strategy;

/// Whether a subcommand's first positional is a task name (`NAME`, id `name`): read from the
/// command tree, so a new verb completes without a list to keep.
fn takes_task(sub: &clap::Command) -> bool {
    sub.get_positionals().next().is_some_and(|a| a.get_id() == "name")
}

#[derive(Debug, PartialEq, Eq)]
pub enum Need {
    Words(Vec<String>),
    Tasks,
    Versions { task: String },
    Namespaces,
    Contexts,
    Nothing,
}

fn flag_value(words: &[String], names: &[&str]) -> Option<String> {
    let mut it = words.iter();
    while let Some(w) = it.next() {
        for n in names {
            if w == n {
                return it.next().cloned();
            }
            if let Some(v) = w.strip_prefix(&format!("{n}=")) {
                return Some(v.to_string());
            }
        }
    }
    None
}

/// What to offer for `current`, given the words before it (without the program name).
pub fn need(words: &[String], current: &str) -> Need {
    let cmd = Cli::command();
    let globals: Vec<clap::Arg> = cmd.get_arguments().cloned().collect();
    let find_arg = |sub: Option<&clap::Command>, flag: &str| -> Option<clap::Arg> {
        let name = flag.trim_start_matches('-');
        let is = |a: &clap::Arg| {
            a.get_long() == Some(name)
                || (flag.len() == 2 && a.get_short().map(|c| c.to_string()).as_deref() == Some(name))
        };
        globals
            .iter()
            .find(|a| is(a))
            .cloned()
            .or_else(|| sub.and_then(|s| s.get_arguments().find(|a| is(a)).cloned()))
    };
    let takes_value = |sub: Option<&clap::Command>, flag: &str| -> bool {
        find_arg(sub, flag).is_some_and(|a| a.get_action().takes_values() && !flag.contains('='))
    };
    // Positionals typed so far, skipping flags and their values.
    let mut positionals: Vec<&str> = Vec::new();
    let mut sub: Option<clap::Command> = None;
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        if w.starts_with('-') {
            if takes_value(sub.as_ref(), w) {
                i += 1;
            }
        } else {
            if positionals.is_empty() {
                sub = cmd.find_subcommand(w).cloned();
            }
            positionals.push(w);
        }
        i += 1;
    }
    if let Some(prev) = words.last().filter(|p| p.starts_with('-') && takes_value(sub.as_ref(), p)) {
        return match prev.as_str() {
            "-n" | "--namespace" => Need::Namespaces,
            "--context" => Need::Contexts,
            "--version" | "--keep" => match positionals.get(1) {
                Some(task) if sub.as_ref().is_some_and(takes_task) => {
                    Need::Versions { task: task.to_string() }
                }
                _ => Need::Nothing,
            },
            _ => match find_arg(sub.as_ref(), prev) {
                Some(a) => {
                    Need::Words(a.get_possible_values().iter().map(|v| v.get_name().to_string()).collect())
                }
                None => Need::Nothing,
            },
        };
    }
    if current.starts_with('-') {
        let mut flags: Vec<String> =
            globals.iter().filter_map(|a| a.get_long().map(|l| format!("--{l}"))).collect();
        if let Some(s) = &sub {
            flags.extend(s.get_arguments().filter_map(|a| a.get_long().map(|l| format!("--{l}"))));
        }
        return Need::Words(flags);
    }
    match (&sub, positionals.len()) {
        (None, 0) => Need::Words(
            cmd.get_subcommands()
                .filter(|s| !s.is_hide_set())
                .flat_map(|s| {
                    std::iter::once(s.get_name().to_string())
                        .chain(s.get_visible_aliases().map(str::to_string))
                })
                .collect(),
        ),
        (Some(s), n) if n >= 1 => match s.get_positionals().nth(n - 1) {
            Some(a) if !a.get_possible_values().is_empty() => {
                Need::Words(a.get_possible_values().iter().map(|v| v.get_name().to_string()).collect())
            }
            Some(_) if n == 1 && takes_task(s) => Need::Tasks,
            _ => Need::Nothing,
        },
        _ => Need::Nothing,
    }
}

async fn answer(need: Need, words: &[String]) -> Vec<String> {
    let options = || ConnectOptions {
        kubeconfig: flag_value(words, &["--kubeconfig"]).map(Into::into),
        context: flag_value(words, &["--context"]),
        namespace: flag_value(words, &["-n", "--namespace"]),
        request_timeout: Some(std::time::Duration::from_secs(3)),
        ..ConnectOptions::default()
    };
    match need {
        Need::Words(w) => w,
        Need::Nothing => vec![],
        Need::Contexts => kube::config::Kubeconfig::read()
            .map(|k| k.contexts.into_iter().map(|c| c.name).collect())
            .unwrap_or_default(),
        Need::Namespaces => {
            let Ok(kube) = Kube::connect(&options()).await else { return vec![] };
            let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(kube.client);
            api.list_metadata(&Default::default())
                .await
                .map(|l| l.items.into_iter().filter_map(|n| n.metadata.name).collect())
                .unwrap_or_default()
        }
        Need::Tasks => {
            let Ok(kube) = Kube::connect(&options()).await else { return vec![] };
            let ns = kube.namespace.clone();
            kube.list::<Strategy>(Some(&ns), None)
                .await
                .map(|l| l.into_iter().filter_map(|s| s.metadata.name).collect())
                .unwrap_or_default()
        }
        Need::Versions { task } => {
            let Ok(kube) = Kube::connect(&options()).await else { return vec![] };
            let ns = kube.namespace.clone();
            match kube.get::<Strategy>(&ns, &task).await {
                Ok(Some(s)) => {
                    let (old, new) = crate::plan::operate::versions(&s);
                    std::iter::once(old).chain(new).collect()
                }
                _ => vec![],
            }
        }
    }
}

/// Candidates for the last word of `args`, filtered by its prefix.
pub async fn complete(args: &[String]) -> Vec<String> {
    let (current, words) = match args.split_last() {
        Some((c, w)) => (c.clone(), w.to_vec()),
        None => (String::new(), vec![]),
    };
    let mut out: Vec<String> = answer(need(&words, &current), &words)
        .await
        .into_iter()
        .filter(|c| c.starts_with(&current))
        .collect();
    out.sort();
    out.dedup();
    out
}

pub fn script(shell: &str) -> Option<&'static str> {
    Some(match shell {
        "bash" => BASH,
        "zsh" => ZSH,
        "fish" => FISH,
        "powershell" => POWERSHELL,
        _ => return None,
    })
}

const BASH: &str = r#"# bash completion for kubectl-grayscale: source <(kubectl-grayscale completion bash)
_kubectl_grayscale() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    local IFS=$'\n'
    COMPREPLY=($(kubectl-grayscale __complete "${COMP_WORDS[@]:1:COMP_CWORD-1}" "$cur" 2>/dev/null))
}
complete -F _kubectl_grayscale kubectl-grayscale
"#;

const ZSH: &str = r#"#compdef kubectl-grayscale
# zsh completion for kubectl-grayscale: source <(kubectl-grayscale completion zsh)
_kubectl_grayscale() {
    local -a candidates
    candidates=("${(@f)$(kubectl-grayscale __complete "${(@)words[2,CURRENT-1]}" "${words[CURRENT]}" 2>/dev/null)}")
    compadd -a candidates
}
compdef _kubectl_grayscale kubectl-grayscale
"#;

const FISH: &str = r#"# fish completion for kubectl-grayscale: kubectl-grayscale completion fish | source
function __kubectl_grayscale_complete
    set -l tokens (commandline -opc)
    set -e tokens[1]
    kubectl-grayscale __complete $tokens (commandline -ct) 2>/dev/null
end
complete -c kubectl-grayscale -f -a '(__kubectl_grayscale_complete)'
"#;

const POWERSHELL: &str = r#"# PowerShell completion for kubectl-grayscale:
#   kubectl-grayscale completion powershell | Out-String | Invoke-Expression
Register-ArgumentCompleter -Native -CommandName 'kubectl-grayscale' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)
    $words = @($commandAst.CommandElements | Select-Object -Skip 1 | ForEach-Object { $_.ToString() })
    if ($wordToComplete -eq '') { $words += '' }
    & kubectl-grayscale __complete @words 2>$null | ForEach-Object {
        [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)
    }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn the_first_word_completes_to_subcommands() {
        let Need::Words(subs) = need(&[], "") else { panic!() };
        assert!(subs.contains(&"takeover".to_string()) && subs.contains(&"get".to_string()));
    }

    #[test]
    fn task_names_come_after_verbs_that_take_one() {
        assert_eq!(need(&w("status"), ""), Need::Tasks);
        assert_eq!(need(&w("-n demo shift"), "re"), Need::Tasks);
        assert_eq!(need(&w("shift rc --weight 10"), ""), Need::Nothing);
    }

    #[test]
    fn versions_come_after_version_flags_of_a_task() {
        assert_eq!(need(&w("takeover rc --version"), ""), Need::Versions { task: "rc".into() });
        assert_eq!(need(&w("offline rc -n x --keep"), "v"), Need::Versions { task: "rc".into() });
    }

    #[test]
    fn flags_and_their_values_complete_from_the_command_tree() {
        let Need::Words(f) = need(&w("shift rc"), "--") else { panic!() };
        assert!(f.contains(&"--interval".to_string()) && f.contains(&"--namespace".to_string()));
        let Need::Words(v) = need(&w("list -o"), "") else { panic!() };
        assert!(v.contains(&"json".to_string()));
        assert_eq!(need(&w("list --namespace"), ""), Need::Namespaces);
        assert_eq!(
            need(&w("create"), ""),
            Need::Words(vec!["bluegreen".into(), "canary".into(), "mirror".into()])
        );
        assert_eq!(need(&w("create canary"), "rc"), Need::Nothing, "a new task's name is not completed");
        let Need::Words(shells) = need(&w("completion"), "") else { panic!() };
        assert_eq!(shells, ["bash", "zsh", "fish", "powershell"]);
    }

    #[test]
    fn every_verb_with_a_task_argument_completes_task_names() {
        let cmd = Cli::command();
        let verbs: Vec<&str> =
            cmd.get_subcommands().filter(|s| takes_task(s)).map(|s| s.get_name()).collect();
        for v in [
            "status", "shift", "match", "takeover", "mirror", "pause", "resume", "offline", "history",
            "undo", "sync",
        ] {
            assert!(verbs.contains(&v), "{v} in {verbs:?}");
            assert_eq!(need(&w(v), ""), Need::Tasks, "{v}");
        }
        assert!(!verbs.contains(&"create") && !verbs.contains(&"list"));
        assert_eq!(need(&w("get"), ""), Need::Tasks, "aliases too");
    }
}
