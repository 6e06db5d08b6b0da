use pgbulk::CopyRow;

struct Money(u64);

#[derive(CopyRow)]
struct Payment {
    amount: Money,
}

fn main() {}
