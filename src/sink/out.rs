//! Writing to stdout without panicking when the reader goes away (`edgetap ... |
//! head`): a closed pipe ends output quietly, as ripgrep does.

use std::io::Write;

/// Write `text` and a newline to stdout; a broken pipe is not an error.
pub fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out
        .write_all(text.as_bytes())
        .and_then(|_| out.write_all(b"\n"));
}

/// `println!`-like macro over [`line`].
#[macro_export]
macro_rules! outln {
    () => { $crate::sink::out::line("") };
    ($($arg:tt)*) => { $crate::sink::out::line(&format!($($arg)*)) };
}
