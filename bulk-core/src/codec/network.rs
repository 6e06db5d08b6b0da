//! Codec: inet and cidr, for `std::net::IpAddr` (a single host) and [`Inet`] (an address with
//! a prefix length), in `inet_send` layout: `uint8 family` (2 = IPv4, 3 = IPv6), `uint8 bits`
//! (the prefix length), `uint8 is_cidr`, `uint8 nb` (4 or 16), then the `nb` address bytes.
//!
//! An `IpAddr` is written with the full prefix (`/32`, `/128`); an inet or cidr value with a
//! shorter prefix cannot be held by an `IpAddr` and is a decode error (read it as [`Inet`]).
//! A cidr value must have no bits set right of its prefix: such an [`Inet`] is an encode error
//! on the client, as the server would reject it.

use super::{non_null, Decode, DecodeError, Encode, EncodeError};
use super::{put_len, Reader};
use crate::codec::put_be;
use bytes::BytesMut;
use postgres_types::Type;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `family` of an IPv4 value (`PGSQL_AF_INET`).
const PGSQL_AF_INET: u8 = 2;
/// `family` of an IPv6 value (`PGSQL_AF_INET6`).
const PGSQL_AF_INET6: u8 = 3;

/// An IP address with a prefix length: a PostgreSQL `inet` (host with optional netmask, e.g.
/// `192.168.1.5/24`) or `cidr` (a network, e.g. `192.168.1.0/24`) value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Inet {
    addr: IpAddr,
    prefix: u8,
}

impl Inet {
    /// An address with a prefix length; `None` when the prefix is longer than the address
    /// (32 bits for IPv4, 128 for IPv6).
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        (prefix <= max_prefix(addr)).then_some(Inet { addr, prefix })
    }

    /// The address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether no bits are set right of the prefix, as a `cidr` value requires.
    pub fn is_network(&self) -> bool {
        let host_bits = u32::from(max_prefix(self.addr) - self.prefix);
        match self.addr {
            IpAddr::V4(a) => u32::from(a).checked_shl(32 - host_bits).unwrap_or(0) == 0,
            IpAddr::V6(a) => u128::from(a).checked_shl(128 - host_bits).unwrap_or(0) == 0,
        }
    }
}

impl From<IpAddr> for Inet {
    /// A single host: the full prefix length.
    fn from(addr: IpAddr) -> Self {
        Inet {
            addr,
            prefix: max_prefix(addr),
        }
    }
}

impl fmt::Display for Inet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The full prefix length of an address: 32 or 128.
#[inline]
fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// Whether `ty` is inet or cidr.
#[inline]
fn is_network(ty: &Type) -> bool {
    matches!(*ty, Type::INET | Type::CIDR)
}

/// Writes an INET or CIDR field in `inet_send` layout.
#[inline]
fn inet_send(v: Inet, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let is_cidr = *ty == Type::CIDR;
    if is_cidr && !v.is_network() {
        return Err(EncodeError::OutOfRange(format!(
            "{v} has bits set right of its prefix, which a cidr value cannot have \
             (use the network address, or an inet column)"
        )));
    }
    let (family, octets): (u8, &[u8]) = match &v.addr {
        IpAddr::V4(a) => (PGSQL_AF_INET, &a.octets()),
        IpAddr::V6(a) => (PGSQL_AF_INET6, &a.octets()),
    };
    put_len(buf, 4 + octets.len())?;
    put_be(buf, [family]);
    put_be(buf, [v.prefix]);
    put_be(buf, [u8::from(is_cidr)]);
    put_be(buf, [u8::try_from(octets.len()).unwrap_or(0)]);
    buf.extend_from_slice(octets);
    Ok(())
}

/// Reads an INET or CIDR value.
#[inline]
fn inet_recv(raw: &[u8]) -> Result<Inet, DecodeError> {
    let mut r = Reader::new(raw, "inet");
    let head = r.take(4)?;
    let (family, bits, is_cidr, nb) = (head[0], head[1], head[2], head[3]);
    if is_cidr > 1 {
        return Err(DecodeError::Invalid(format!(
            "inet has an invalid is_cidr flag {is_cidr}"
        )));
    }
    let addr = match (family, nb) {
        (PGSQL_AF_INET, 4) => {
            let b: [u8; 4] = r.take(4)?.try_into().map_err(|_| short())?;
            IpAddr::V4(Ipv4Addr::from(b))
        }
        (PGSQL_AF_INET6, 16) => {
            let b: [u8; 16] = r.take(16)?.try_into().map_err(|_| short())?;
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => {
            return Err(DecodeError::Invalid(format!(
                "inet has an invalid family {family} with address length {nb}"
            )))
        }
    };
    r.finish()?;
    Inet::new(addr, bits).ok_or_else(|| {
        DecodeError::Invalid(format!(
            "inet has an invalid prefix length {bits} for {addr}"
        ))
    })
}

/// The impossible short-read error.
fn short() -> DecodeError {
    DecodeError::invalid("internal: short read")
}

impl Encode for Inet {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_network(ty)
    }

    #[inline]
    fn encode_field(&self, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        inet_send(*self, ty, buf)
    }
}

impl Decode for Inet {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_network(ty)
    }

    #[inline]
    fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        inet_recv(non_null(raw)?)
    }
}

impl Encode for IpAddr {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_network(ty)
    }

    #[inline]
    fn encode_field(&self, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        inet_send(Inet::from(*self), ty, buf)
    }
}

impl Decode for IpAddr {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_network(ty)
    }

    #[inline]
    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        let v = inet_recv(non_null(raw)?)?;
        if v.prefix == max_prefix(v.addr) {
            Ok(v.addr)
        } else {
            Err(DecodeError::OutOfRange(format!(
                "{ty} '{v}' has a netmask, which an IpAddr cannot hold; read it as pgbulk::Inet \
                 or select host(col)::inet"
            )))
        }
    }
}
