use pgbulk::CopyRow;

#[derive(CopyRow)]
#[copy(crate = "not a path")]
struct User {
    id: i64,
}

fn main() {}
