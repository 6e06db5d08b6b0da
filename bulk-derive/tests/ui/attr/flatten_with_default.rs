use pgbulk::CopyRow;

#[derive(CopyRow)]
struct Address {
    street: String,
}

#[derive(CopyRow)]
struct User {
    id: i64,
    #[copy(flatten, default)]
    address: Address,
}

fn main() {}
