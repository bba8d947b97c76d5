//! The output settings every command shares, decided once from the global flags: verbosity
//! (`-q`, `-v`, `-vv`) and color (`--color auto|always|never`, NO_COLOR, CLICOLOR_FORCE).

use std::ffi::OsString;
use std::io::IsTerminal;
use std::sync::OnceLock;

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// Color when the stream is a terminal, NO_COLOR is unset and CLICOLOR_FORCE does not force it.
    #[default]
    Auto,
    Always,
    Never,
}

/// How much to print: -1 with `-q`, 0 by default, 1 with `-v`, 2 with `-vv`.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub verbosity: i8,
    pub color: ColorChoice,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Sets the run's settings (once, from the command line; later calls are ignored).
pub fn configure(quiet: bool, verbose: u8, color: ColorChoice) {
    let verbosity = if quiet { -1 } else { verbose.min(2) as i8 };
    let _ = SETTINGS.set(Settings { verbosity, color });
}

/// The run's settings (defaults when `configure` was not called, e.g. in unit tests).
pub fn settings() -> Settings {
    SETTINGS.get().copied().unwrap_or(Settings { verbosity: 0, color: ColorChoice::Auto })
}

/// Whether to color `stream`, by the settings and the environment.
pub fn color_enabled(stream: &impl IsTerminal) -> bool {
    decide_color(
        settings().color,
        stream.is_terminal(),
        std::env::var_os("NO_COLOR"),
        std::env::var_os("CLICOLOR_FORCE"),
    )
}

/// The color rule (no-color.org, bixense.com/clicolors): `always`/`never` win; under `auto`,
/// a non-empty NO_COLOR turns color off, then a CLICOLOR_FORCE other than empty or `0` turns
/// it on, else color only on a terminal.
pub fn decide_color(
    choice: ColorChoice,
    tty: bool,
    no_color: Option<OsString>,
    clicolor_force: Option<OsString>,
) -> bool {
    let set = |v: &Option<OsString>| v.as_ref().is_some_and(|v| !v.is_empty());
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto if set(&no_color) => false,
        ColorChoice::Auto if set(&clicolor_force) && clicolor_force.as_deref() != Some("0".as_ref()) => true,
        ColorChoice::Auto => tty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn color_rule_table() {
        use ColorChoice::*;
        let s = |v: &str| Some(OsString::from(v));
        // (choice, tty, NO_COLOR, CLICOLOR_FORCE) -> color
        let cases = [
            (Auto, true, None, None, true),
            (Auto, false, None, None, false),
            (Auto, true, s("1"), None, false),
            (Auto, true, s(""), None, true),
            (Auto, false, None, s("1"), true),
            (Auto, false, None, s("0"), false),
            (Auto, false, None, s(""), false),
            (Auto, false, s("1"), s("1"), false),
            (Always, false, s("1"), None, true),
            (Never, true, None, s("1"), false),
        ];
        for (choice, tty, no_color, force, want) in cases {
            assert_eq!(
                decide_color(choice, tty, no_color.clone(), force.clone()),
                want,
                "{choice:?} tty={tty} NO_COLOR={no_color:?} CLICOLOR_FORCE={force:?}"
            );
        }
    }
}
