use pgbulk::CopyRow;

#[derive(CopyRow)]
#[copy(table = "app.")]
struct User {
    id: i64,
}

fn main() {}
