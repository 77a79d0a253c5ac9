//! Small scanners over SQL text shared by the batching checks that read
//! a statement's bytes without a full parse.

/// Index of the quote that closes the string opened at `open`, honouring
/// doubled quotes and, outside backticks, backslash escapes when the
/// session reads them.
pub(crate) fn skip_quoted(
    row: &[u8],
    open: usize,
    quote: u8,
    backslash_escapes: bool,
) -> Option<usize> {
    let mut i = open + 1;
    while i < row.len() {
        if backslash_escapes && row[i] == b'\\' && quote != b'`' {
            i += 2;
            continue;
        }
        if row[i] == quote {
            if row.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Position of `needle` in `hay`.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
