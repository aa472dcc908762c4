"""A fixed RSA-8192 key for tests.

Generating an 8192-bit key takes from two to thirty seconds depending on luck and
load; rebuilding it from its two primes takes milliseconds. It protects nothing.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["rsa_8192"]

_P = int(
    "f917f37a96ed27f96b13a4225c26d2e87f690f8bbf9239c8a71502068d64252ec43995f26770e1a94c57cd72"
    "eacfb521ec4b15b01d78b00cd8e5d7369014c3e5c032743b02c40e090166a9ec124684113ed46e9ff62e3c30"
    "8533a90f450ef6402334b6df6f4be800fde5e77c50d29763a8b99b05e2f5f1f6faad4c8a11cf489dbdd03c81"
    "9e4c1cbdbd62881d57a5e5fa5d7982398a9adb570b05e609838fc8730aa469d7b36680a5369f6d9d0b052a6c"
    "2d7ca1c3aae6d7e5b2986d489751be6693e724c0955b506cca482dc025ec51b89a57d11716274a74d60042e5"
    "f62a2fcc66ba315688235aa79213ba00763fb5faa28eee8257efc12516c7dbfa6b2e865d111f9ccede576eff"
    "e17cb3b375943fa6125063c99f07a1106535113dcb9927045c11c06b71ec7ca3894225ee67ee6c3809c02c52"
    "8db958cf00af35017bddfe4d4b85811e6006f61957e2f767f64e1d6febd507a7bea0eb5ab434310033d8d9d5"
    "13bb60cc30532a1588e859415155deb4439db03330f129ae70c8bca0fc29c9ec5f730eb1171c44b04e38e9ae"
    "5103a98c452e6e5caaf7621516bed61db3ee141c83b6c6c8cc08083cc352fdb66fc8d94cd9f04a6e51b1a48c"
    "60fbc939ca4565bf15d20ba77bb12408e6ac8be138a887b9a52a728baf726e9757aea6b2e471dd3b3751123f"
    "d2259b7326514faf4a71347e6b5c5fb8bf68a8af034dcdc383dfabbf",
    16,
)
_Q = int(
    "f8480ca4d52f4c65c211544301130c10cd5c3475ff8fb71a874de144f8cc3d9bd251af5bbcb5a28105147494"
    "1dff880152682880d7b6dc95c3f3e52ff0a18cb9f65d651a46df88229c2be8666d47071e791c7fd61446ebd1"
    "650b256d63b91c320d1d7cf8d2c02cee42b44f8d852e1c1eed30ff5bbb762d0c62a9ffa0e8c532abfe1df435"
    "25658808be90001c4fdeb1338d79e90943627b472db556feacbb11e1c57881341f7095d67ebd0b4f85bb144d"
    "3606f8bd76ad453104684ac12e195c59bd4ab7782cba84a0b7c81a1d8aae4028cd8994adbfd459c0a6d54302"
    "589c610f5a884652701e710dccf3f16a6536d2949687efcf7183a268840eb365faec3f69ff993560b855445e"
    "c9e858ada9ede3bca98699ffb688d2afb8530ca9f55136fb2d496ad4b645dfe68031b186c9dcf5164f7ec25f"
    "d1819325a0f11402f98242271912b735c9d5bffab64e1d6a688ea3288a8e82aa52f7cf24a0d326339fc44a68"
    "fd0bf4f84a6e0d809e890939c055e203229ec5cea3ee3252ac7323d0749409c391098c7c57db60dc97fe13d9"
    "51f23a43cfdf8037ae7d3991f9fd744242b2d29b072fa6d7526ca6a83f879b66688f01aafcd46c5643d2c91d"
    "b52530f8df9cda684a07cd4084a107e7858e90cfc7bf90c2ee1445549e5abc443923e7d4e0c46d7ead3d2da8"
    "ac8a222c8f97ed72280c1439483d0e68ab1f243058606dd71615d66f",
    16,
)


def rsa_8192() -> rsa.RSAPrivateKey:
    """The test RSA-8192 private key (e = 65537)."""
    e = 65537
    n = _P * _Q
    d = pow(e, -1, (_P - 1) * (_Q - 1))
    public = rsa.RSAPublicNumbers(e, n)
    numbers = rsa.RSAPrivateNumbers(
        p=_P,
        q=_Q,
        d=d,
        dmp1=rsa.rsa_crt_dmp1(d, _P),
        dmq1=rsa.rsa_crt_dmq1(d, _Q),
        iqmp=rsa.rsa_crt_iqmp(_P, _Q),
        public_numbers=public,
    )
    # The primes are known good; skipping the primality re-check saves seconds.
    return numbers.private_key(unsafe_skip_rsa_key_validation=True)
