// A field type that can be encoded but not decoded: the struct derives, and only reading it
// back is an error, which names the field.
use pgbulk::__private::{BytesMut, Type};
use pgbulk::{CopyRow, Encode, EncodeError, FromCopyRow};

struct WriteOnly;

impl Encode for WriteOnly {
    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_field(&self, _: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        buf.extend_from_slice(&(-1_i32).to_be_bytes());
        Ok(())
    }
}

#[derive(CopyRow)]
struct Audit {
    entry: WriteOnly,
}

fn copy_out<T: FromCopyRow>() {}

fn main() {
    copy_out::<Audit>();
}
