use pgbulk::CopyRow;

// Every bad attribute of the derive is reported at once.
#[derive(CopyRow)]
#[copy(table = 1, crate = "pgbulk", crate = "pgbulk", tabel = "users")]
struct User {
    #[copy(renam = "user_id", key, key)]
    id: i64,
    #[copy(rename = 5)]
    name: String,
    #[copy(skip, key)]
    cached: i64,
    #[copy(rename = "")]
    email: String,
}

fn main() {}
