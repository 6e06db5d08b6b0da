use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    #[copy(rename = "a", rename = "b")]
    id: i64,
}

fn main() {}
