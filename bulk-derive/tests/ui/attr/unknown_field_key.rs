use pgbulk::CopyRow;

#[derive(CopyRow)]
struct User {
    #[copy(renam = "user_id")]
    id: i64,
}

fn main() {}
