use pgbulk::CopyRow;

#[derive(CopyRow)]
#[copy(rename_all = "title case")]
struct User {
    user_id: i64,
}

fn main() {}
