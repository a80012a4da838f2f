//! Splits one output stream's bytes into log lines the way docker's log copier does: complete
//! lines without their newline, lines longer than [`MAX_PIECE`] in pieces of that size marked
//! partial, and an unterminated last line at end of file. Pure: the shim feeds it what it reads.

/// docker's log buffer size: a longer line is logged in pieces of this size.
pub const MAX_PIECE: usize = 16 * 1024;

/// One message to log: a whole line, or one piece of a long line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The bytes, without the line's newline.
    pub bytes: Vec<u8>,
    /// Set on every piece of a line that was split, the last one included.
    pub partial: Option<Partial>,
}

/// Where a piece sits in its split line (docker's `PartialLogMetaData`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partial {
    /// Numbers the split lines of this stream, from 0: the pieces of one line share it.
    pub line: u64,
    /// The piece's place in its line, from 1.
    pub ordinal: u32,
    /// Whether this piece ends the line.
    pub last: bool,
}

/// The splitter for one stream: feed it chunks as they come, then [`LineSplitter::finish`].
#[derive(Debug)]
pub struct LineSplitter {
    max: usize,
    pending: Vec<u8>,
    split_lines: u64,
    pieces_of_line: u32,
}

impl Default for LineSplitter {
    fn default() -> Self {
        Self::with_max_piece(MAX_PIECE)
    }
}

impl LineSplitter {
    /// A splitter cutting lines longer than `max` bytes (at least 1) into pieces.
    pub fn with_max_piece(max: usize) -> Self {
        Self {
            max: max.max(1),
            pending: Vec::new(),
            split_lines: 0,
            pieces_of_line: 0,
        }
    }

    /// Takes the next chunk of the stream and returns the pieces it completes.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Piece> {
        self.pending.extend_from_slice(chunk);
        let mut pieces = Vec::new();
        let mut start = 0;
        loop {
            let rest = &self.pending[start..];
            match rest.iter().position(|&b| b == b'\n') {
                Some(end) if end <= self.max => {
                    let bytes = rest[..end].to_vec();
                    pieces.push(self.end_line(bytes));
                    start += end + 1;
                }
                _ if rest.len() > self.max => {
                    let bytes = rest[..self.max].to_vec();
                    self.pieces_of_line += 1;
                    let partial = self.partial(false);
                    pieces.push(Piece {
                        bytes,
                        partial: Some(partial),
                    });
                    start += self.max;
                }
                _ => break,
            }
        }
        self.pending.drain(..start);
        pieces
    }

    /// Ends the stream: the unterminated last line, if any. (A piece is only cut when more
    /// bytes follow it, so a split line always has a last piece.)
    pub fn finish(&mut self) -> Option<Piece> {
        if self.pending.is_empty() {
            return None;
        }
        let bytes = std::mem::take(&mut self.pending);
        Some(self.end_line(bytes))
    }

    fn end_line(&mut self, bytes: Vec<u8>) -> Piece {
        if self.pieces_of_line == 0 {
            return Piece {
                bytes,
                partial: None,
            };
        }
        self.pieces_of_line += 1;
        let partial = self.partial(true);
        self.split_lines += 1;
        self.pieces_of_line = 0;
        Piece {
            bytes,
            partial: Some(partial),
        }
    }

    fn partial(&self, last: bool) -> Partial {
        Partial {
            line: self.split_lines,
            ordinal: self.pieces_of_line,
            last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split(max: usize, chunks: &[Vec<u8>]) -> Vec<Piece> {
        let mut splitter = LineSplitter::with_max_piece(max);
        let mut pieces: Vec<Piece> = chunks.iter().flat_map(|c| splitter.feed(c)).collect();
        pieces.extend(splitter.finish());
        pieces
    }

    /// Puts the stream back together: a newline after every piece that ends a line.
    fn join(pieces: &[Piece]) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in pieces {
            out.extend_from_slice(&piece.bytes);
            if piece.partial.is_none_or(|p| p.last) {
                out.push(b'\n');
            }
        }
        out
    }

    #[test]
    fn short_lines_come_out_whole_without_newlines() {
        let pieces = split(
            MAX_PIECE,
            &[b"hel".to_vec(), b"lo\nworld\nta".to_vec(), b"il".to_vec()],
        );
        let texts: Vec<&[u8]> = pieces.iter().map(|p| p.bytes.as_slice()).collect();
        assert_eq!(texts, [&b"hello"[..], b"world", b"tail"]);
        assert!(pieces.iter().all(|p| p.partial.is_none()));
    }

    #[test]
    fn a_40_kib_line_comes_out_in_16_kib_pieces_marked_like_docker() {
        let line = vec![b'x'; 40 * 1024];
        let mut input = line.clone();
        input.extend_from_slice(b"\nnext\n");
        let pieces = split(MAX_PIECE, &[input]);
        let sizes: Vec<usize> = pieces.iter().map(|p| p.bytes.len()).collect();
        assert_eq!(sizes, [16 * 1024, 16 * 1024, 8 * 1024, 4]);
        let marks: Vec<Option<Partial>> = pieces.iter().map(|p| p.partial).collect();
        assert_eq!(
            marks,
            [
                Some(Partial {
                    line: 0,
                    ordinal: 1,
                    last: false
                }),
                Some(Partial {
                    line: 0,
                    ordinal: 2,
                    last: false
                }),
                Some(Partial {
                    line: 0,
                    ordinal: 3,
                    last: true
                }),
                None,
            ]
        );
    }

    #[test]
    fn an_unterminated_split_line_at_the_end_gets_its_last_piece() {
        let pieces = split(4, &[b"abcdefgh".to_vec()]);
        let last = pieces.last().expect("pieces");
        assert_eq!(last.bytes, b"efgh");
        assert_eq!(
            last.partial,
            Some(Partial {
                line: 0,
                ordinal: 2,
                last: true
            })
        );
    }

    proptest! {
        #[test]
        fn pieces_put_together_give_the_input_back(
            text in proptest::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..200),
            cuts in proptest::collection::vec(0usize..200, 0..8),
            max in 1usize..20,
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c <= text.len()).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut from = 0;
            for cut in cuts.into_iter().chain([text.len()]) {
                chunks.push(text[from..cut].to_vec());
                from = cut;
            }
            let pieces = split(max, &chunks);
            let mut expected = text.clone();
            if !text.is_empty() && !text.ends_with(b"\n") {
                expected.push(b'\n');
            }
            prop_assert_eq!(join(&pieces), expected);
            prop_assert!(pieces.iter().all(|p| p.bytes.len() <= max && !p.bytes.contains(&b'\n')));
            prop_assert!(pieces.iter().all(|p| p.partial.is_none_or(|m| m.last || p.bytes.len() == max)));
        }
    }
}
