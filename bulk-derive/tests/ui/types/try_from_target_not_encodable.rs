use pgbulk::CopyRow;

#[derive(Clone)]
struct Cents(u64);

struct Money(u64);

impl TryFrom<Cents> for Money {
    type Error = std::convert::Infallible;
    fn try_from(c: Cents) -> Result<Self, Self::Error> {
        Ok(Money(c.0))
    }
}

#[derive(CopyRow)]
struct Payment {
    #[copy(try_from = "Money")]
    amount: Cents,
}

fn main() {}
