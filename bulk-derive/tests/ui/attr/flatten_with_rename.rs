use pgbulk::CopyRow;

#[derive(CopyRow)]
struct Address {
    street: String,
}

#[derive(CopyRow)]
struct User {
    id: i64,
    #[copy(flatten, rename = "home")]
    address: Address,
}

fn main() {}
