//! The sans-IO binary COPY engine: [`Encoder`] turns rows into COPY data, [`Decoder`] turns
//! COPY data back into rows. Neither does any I/O: every driver (tokio-postgres, the sync
//! `postgres` crate, …) and the `.pgcopy` file reader and writer move the bytes, and this is
//! the only place that knows the framing.
//!
//! ```text
//! header:  "PGCOPY\n\xff\r\n\0"  int32 flags (0)  int32 header-extension length (0)
//! tuple:   int16 field count, then per field: int32 length (-1 = NULL) and the bytes
//! trailer: int16 -1
//! ```

mod columns;
mod decoder;
mod encoder;

pub(crate) use columns::tuples_to_arrays;
pub use decoder::{Decoder, Fed, Owned, RowSink, Step, Visit};
pub use encoder::Encoder;
pub(crate) use encoder::{write_header, write_trailer};
#[cfg(test)]
pub(crate) use encoder::{HEADER_LEN, SIGNATURE};
