use pgbulk::__private::{BytesMut, Type};
use pgbulk::{CopyRow, Encode, EncodeError, FromCopyRow};

struct Text;

impl Encode for Text {
    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_field(&self, _: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        buf.extend_from_slice(&(-1_i32).to_be_bytes());
        Ok(())
    }
}

#[derive(CopyRow)]
struct Borrowed<'a> {
    name: &'a Text,
}

fn copy_out<T: FromCopyRow>() {}

fn main() {
    copy_out::<Borrowed<'static>>();
}
