use pgbulk::CopyRow;

struct Address {
    street: String,
}

#[derive(CopyRow)]
struct User {
    id: i64,
    #[copy(flatten)]
    address: Address,
}

fn main() {}
