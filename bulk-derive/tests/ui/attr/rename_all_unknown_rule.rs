use pgbulk::CopyRow;

#[derive(CopyRow)]
#[copy(rename_all = "camelcase")]
struct User {
    user_id: i64,
}

fn main() {}
