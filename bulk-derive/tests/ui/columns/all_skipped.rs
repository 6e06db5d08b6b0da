use pgbulk::CopyRow;

#[derive(CopyRow)]
struct Cache {
    #[copy(skip)]
    hits: u64,
    #[copy(skip)]
    misses: u64,
}

fn main() {}
