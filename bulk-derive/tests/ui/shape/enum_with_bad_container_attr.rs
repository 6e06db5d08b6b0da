use pgbulk::CopyRow;

// Both the shape and the attribute are reported.
#[derive(CopyRow)]
#[copy(tabel = "status")]
enum Status {
    Active,
}

fn main() {}
