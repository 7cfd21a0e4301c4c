"""Who a peer is: libp2p public keys, peer ids and signatures
(:mod:`~wsstar.identity.keys`), the addresses peers join with
(:mod:`~wsstar.identity.addresses`) and private-swarm allow lists
(:mod:`~wsstar.identity.allowlist`)."""
