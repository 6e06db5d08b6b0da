use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    id: i64,
    #[copy(default = "zero")]
    score: i64,
}

fn main() {}
