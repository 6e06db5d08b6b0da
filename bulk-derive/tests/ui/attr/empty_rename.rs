use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    #[copy(rename = "")]
    id: i64,
}

fn main() {}
