//! Where a server's response to a command ends.
//!
//! The relay forwards response bytes as they arrive and never holds a
//! whole result set; it only asks this tracker, packet by packet, what
//! comes next: another server packet, data from the client (a local file,
//! an authentication round), or nothing (the response is complete). The
//! tracker needs only the first bytes of each logical packet.

use mysql_common::constants::StatusFlags;

use crate::caps::SessionCaps;
use crate::command::ResponseShape;
use crate::lenenc::Reader;
use crate::ok::{terminator_status, ErrInfo, OkInfo, EOF_HEADER, ERR_HEADER, OK_HEADER};
use crate::packet::MAX_PAYLOAD_LEN;
use crate::stmt::PrepareOk;
use crate::ProtocolError;

/// How many payload bytes the tracker needs at the start of a packet to
/// classify it when the packet is too large to hold whole. Covers the
/// header and status fields of an OK packet with 9-byte integers.
pub const HEAD_LEN: usize = 32;

/// First byte of a local-infile request.
const LOCAL_INFILE_HEADER: u8 = 0xFB;

/// What the relay must do after a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Read and relay another packet from the server.
    ServerPacket,
    /// The server asked for a local file: relay the client's packets until
    /// an empty one, then call [`ResponseTracker::client_done`].
    ClientFile,
    /// An authentication round: relay one client packet, then call
    /// [`ResponseTracker::client_done`].
    ClientAuth,
    /// The response is complete; the client may send its next command.
    Done,
    /// The connection left the command phase (replication stream): relay
    /// raw bytes both ways until either side closes.
    Stream,
}

/// What a packet was, for the session's bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// An OK packet that ends a statement (the payload can be read with
    /// [`OkInfo::parse`]).
    Ok,
    /// An ERR packet that ends the response.
    Err,
    /// A result set ended (EOF or OK-format terminator).
    ResultSetEnd,
    /// A successful COM_STMT_PREPARE.
    Prepared(PrepareOk),
    /// A row of a result set (text or binary).
    Row,
    /// Anything else: column definitions, rows, progress reports, auth data.
    Other,
}

/// The tracker's view of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// What comes next.
    pub next: Next,
    /// What this packet was.
    pub event: Event,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    None,
    Single,
    ResultStart,
    Columns {
        left: u64,
    },
    ColumnsEof,
    Rows,
    AwaitClientFile,
    PrepareFirst,
    PrepareDefs {
        params: u16,
        params_eof: bool,
        columns: u16,
        columns_eof: bool,
    },
    Auth,
    AwaitClientAuth,
    Stream,
    Done,
}

/// Follows one response, packet by packet.
#[derive(Debug, Clone)]
pub struct ResponseTracker {
    caps: SessionCaps,
    shape: ResponseShape,
    state: State,
    status: Option<StatusFlags>,
}

impl ResponseTracker {
    /// Starts tracking the response to a command of the given shape.
    pub fn new(shape: ResponseShape, caps: SessionCaps) -> ResponseTracker {
        let state = match shape {
            ResponseShape::None => State::None,
            ResponseShape::Single => State::Single,
            ResponseShape::Query | ResponseShape::Execute => State::ResultStart,
            ResponseShape::Prepare => State::PrepareFirst,
            ResponseShape::Fetch | ResponseShape::FieldList => State::Rows,
            ResponseShape::Auth => State::Auth,
            ResponseShape::Stream => State::Stream,
        };
        ResponseTracker {
            caps,
            shape,
            state,
            status: None,
        }
    }

    /// What to do before any packet was seen: `Done` for commands without
    /// response, `Stream` for replication, `ServerPacket` otherwise.
    pub fn initial(&self) -> Next {
        match self.state {
            State::None => Next::Done,
            State::Stream => Next::Stream,
            _ => Next::ServerPacket,
        }
    }

    /// The last server status flags seen in this response (OK or
    /// terminator), if any.
    pub fn status(&self) -> Option<StatusFlags> {
        self.status
    }

    /// Whether the response is complete.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done | State::None)
    }

    /// Reports that the client side of a file transfer or auth round is
    /// complete; the server speaks next.
    pub fn client_done(&mut self) {
        self.state = match self.state {
            State::AwaitClientFile => State::ResultStart,
            State::AwaitClientAuth => State::Auth,
            other => other,
        };
    }

    /// Observes the next logical packet from the server. `head` is the
    /// payload, or at least its first [`HEAD_LEN`] bytes when the payload
    /// is larger than what the relay holds at once; `payload_len` is the
    /// length announced by the packet header (`MAX_PAYLOAD_LEN` for the
    /// first piece of a multi-packet payload).
    pub fn on_packet(
        &mut self,
        head: &[u8],
        payload_len: usize,
    ) -> Result<Observed, ProtocolError> {
        let first = *head
            .first()
            .ok_or(ProtocolError::malformed("response", "empty packet"))?;
        if first == ERR_HEADER && self.caps.progress() && self.accepts_progress() {
            if let Ok(err) = ErrInfo::parse(head) {
                if err.is_progress_report() {
                    return Ok(self.stay(Event::Other));
                }
            }
        }
        match self.state {
            State::Single => Ok(self.finish_single(first, head)),
            State::ResultStart => self.result_start(first, head),
            State::Columns { left } => {
                let left = left - 1;
                self.state = if left > 0 {
                    State::Columns { left }
                } else if self.caps.deprecate_eof() {
                    State::Rows
                } else {
                    State::ColumnsEof
                };
                Ok(self.stay(Event::Other))
            }
            State::ColumnsEof => self.columns_eof(first, head, payload_len),
            State::Rows => self.row_or_end(first, head, payload_len),
            State::PrepareFirst => self.prepare_first(first, head),
            State::PrepareDefs { .. } => Ok(self.prepare_def()),
            State::Auth => Ok(self.auth(first, head)),
            State::None
            | State::Done
            | State::Stream
            | State::AwaitClientFile
            | State::AwaitClientAuth => Err(ProtocolError::malformed(
                "response",
                format!(
                    "unexpected server packet in {:?} after {:?}",
                    self.state, self.shape
                ),
            )),
        }
    }

    fn accepts_progress(&self) -> bool {
        matches!(self.state, State::ResultStart | State::Single)
    }

    fn stay(&self, event: Event) -> Observed {
        Observed {
            next: Next::ServerPacket,
            event,
        }
    }

    fn done(&mut self, event: Event) -> Observed {
        self.state = State::Done;
        Observed {
            next: Next::Done,
            event,
        }
    }

    fn finish_single(&mut self, first: u8, head: &[u8]) -> Observed {
        let event = match first {
            OK_HEADER => {
                self.status = OkInfo::parse(head, self.caps.session_track())
                    .ok()
                    .map(|ok| ok.status);
                Event::Ok
            }
            ERR_HEADER => Event::Err,
            EOF_HEADER => {
                self.status = terminator_status(head, self.caps.session_track())
                    .ok()
                    .map(|(s, _)| s);
                Event::ResultSetEnd
            }
            _ => Event::Other,
        };
        self.done(event)
    }

    /// After an OK or terminator: another result follows if the server
    /// says so.
    fn after_status(&mut self, status: StatusFlags, event: Event) -> Observed {
        self.status = Some(status);
        if status.contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS) {
            self.state = State::ResultStart;
            self.stay(event)
        } else {
            self.done(event)
        }
    }

    fn result_start(&mut self, first: u8, head: &[u8]) -> Result<Observed, ProtocolError> {
        match first {
            OK_HEADER => {
                let ok = OkInfo::parse(head, self.caps.session_track())?;
                Ok(self.after_status(ok.status, Event::Ok))
            }
            ERR_HEADER => Ok(self.done(Event::Err)),
            LOCAL_INFILE_HEADER if self.shape == ResponseShape::Query => {
                self.state = State::AwaitClientFile;
                Ok(Observed {
                    next: Next::ClientFile,
                    event: Event::Other,
                })
            }
            _ => {
                let columns = Reader::new(head, "column count").lenenc_int()?;
                if columns == 0 {
                    return Err(ProtocolError::malformed("column count", "zero columns"));
                }
                self.state = State::Columns { left: columns };
                Ok(self.stay(Event::Other))
            }
        }
    }

    fn is_terminator(first: u8, payload_len: usize) -> bool {
        first == EOF_HEADER && payload_len < MAX_PAYLOAD_LEN
    }

    fn columns_eof(
        &mut self,
        first: u8,
        head: &[u8],
        payload_len: usize,
    ) -> Result<Observed, ProtocolError> {
        if first == ERR_HEADER {
            return Ok(self.done(Event::Err));
        }
        if !Self::is_terminator(first, payload_len) {
            return Err(ProtocolError::malformed(
                "result set",
                "column definitions not followed by EOF",
            ));
        }
        let (status, _) = terminator_status(head, self.caps.session_track())?;
        self.status = Some(status);
        // An opened cursor sends metadata only; rows come with COM_STMT_FETCH.
        if self.shape == ResponseShape::Execute
            && status.contains(StatusFlags::SERVER_STATUS_CURSOR_EXISTS)
        {
            return Ok(self.done(Event::ResultSetEnd));
        }
        self.state = State::Rows;
        Ok(self.stay(Event::Other))
    }

    fn row_or_end(
        &mut self,
        first: u8,
        head: &[u8],
        payload_len: usize,
    ) -> Result<Observed, ProtocolError> {
        if first == ERR_HEADER {
            return Ok(self.done(Event::Err));
        }
        if Self::is_terminator(first, payload_len) {
            let (status, _) = terminator_status(head, self.caps.session_track())?;
            return Ok(match self.shape {
                ResponseShape::Query | ResponseShape::Execute => {
                    self.after_status(status, Event::ResultSetEnd)
                }
                _ => {
                    self.status = Some(status);
                    self.done(Event::ResultSetEnd)
                }
            });
        }
        let event = if self.shape == ResponseShape::FieldList {
            Event::Other
        } else {
            Event::Row
        };
        Ok(self.stay(event))
    }

    fn prepare_first(&mut self, first: u8, head: &[u8]) -> Result<Observed, ProtocolError> {
        if first == ERR_HEADER {
            return Ok(self.done(Event::Err));
        }
        let ok = PrepareOk::parse(head)?;
        let eofs = !self.caps.deprecate_eof();
        self.state = State::PrepareDefs {
            params: ok.num_params,
            params_eof: eofs && ok.num_params > 0,
            columns: ok.num_columns,
            columns_eof: eofs && ok.num_columns > 0,
        };
        let event = Event::Prepared(ok);
        Ok(self.prepare_advance(event))
    }

    fn prepare_def(&mut self) -> Observed {
        if let State::PrepareDefs {
            params,
            params_eof,
            columns,
            columns_eof,
        } = self.state
        {
            self.state = if params > 0 {
                State::PrepareDefs {
                    params: params - 1,
                    params_eof,
                    columns,
                    columns_eof,
                }
            } else if params_eof {
                State::PrepareDefs {
                    params,
                    params_eof: false,
                    columns,
                    columns_eof,
                }
            } else if columns > 0 {
                State::PrepareDefs {
                    params,
                    params_eof,
                    columns: columns - 1,
                    columns_eof,
                }
            } else {
                State::PrepareDefs {
                    params,
                    params_eof,
                    columns,
                    columns_eof: false,
                }
            };
        }
        self.prepare_advance(Event::Other)
    }

    fn prepare_advance(&mut self, event: Event) -> Observed {
        match self.state {
            State::PrepareDefs {
                params: 0,
                params_eof: false,
                columns: 0,
                columns_eof: false,
            } => self.done(event),
            _ => self.stay(event),
        }
    }

    fn auth(&mut self, first: u8, head: &[u8]) -> Observed {
        match first {
            OK_HEADER => {
                self.status = OkInfo::parse(head, self.caps.session_track())
                    .ok()
                    .map(|ok| ok.status);
                self.done(Event::Ok)
            }
            ERR_HEADER => self.done(Event::Err),
            // caching_sha2_password's "fast auth succeeded": an OK follows.
            0x01 if head == [0x01, 0x03] => self.stay(Event::Other),
            _ => {
                self.state = State::AwaitClientAuth;
                Observed {
                    next: Next::ClientAuth,
                    event: Event::Other,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
