//! A throwaway PostgreSQL for tests and examples.
