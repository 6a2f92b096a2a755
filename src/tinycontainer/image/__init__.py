"""Images: references, a registry client, a content-addressed store and a safe layer applier.

Typical use::

    store = ImageStore(root="/var/lib/tcontainer/images")
    img = store.pull("alpine")
    rootfs = store.mount_rootfs(img, container_dir)

This package imports only ``tinycontainer._errors``, ``tinycontainer.linux`` and the stdlib
(plus the optional ``zstandard`` module for zstd layers).
"""

from __future__ import annotations

from ._archive import image_inspect as image_inspect
from ._archive import load_archive as load_archive
from ._archive import save_archive as save_archive
from ._archive import untagged_images as untagged_images
from ._auth import Credentials as Credentials
from ._auth import default_auth_file as default_auth_file
from ._auth import load_credentials as load_credentials
from ._auth import login_key as login_key
from ._auth import parse_www_authenticate as parse_www_authenticate
from ._auth import remove_credentials as remove_credentials
from ._auth import save_credentials as save_credentials
from ._config import ImageConfig as ImageConfig
from ._http import HttpClient as HttpClient
from ._http import RetryPolicy as RetryPolicy
from ._login import verify_login as verify_login
from ._platform import Platform as Platform
from ._platform import host_platform as host_platform
from ._platform import parse_platform as parse_platform
from ._reference import Reference as Reference
from ._reference import parse_reference as parse_reference
from ._store import UNTAGGED_PREFIX as UNTAGGED_PREFIX
from ._store import Image as Image
from ._store import ImageNotFound as ImageNotFound
from ._store import ImageStore as ImageStore
from ._store import ProgressEvent as ProgressEvent
from ._unpack import UnpackOptions as UnpackOptions
from ._unpack import UnpackResult as UnpackResult
from ._unpack import apply_layer as apply_layer

__all__ = [
    "Credentials",
    "HttpClient",
    "Image",
    "ImageConfig",
    "ImageNotFound",
    "ImageStore",
    "Platform",
    "ProgressEvent",
    "Reference",
    "RetryPolicy",
    "UNTAGGED_PREFIX",
    "UnpackOptions",
    "UnpackResult",
    "apply_layer",
    "default_auth_file",
    "host_platform",
    "image_inspect",
    "load_archive",
    "load_credentials",
    "login_key",
    "parse_platform",
    "parse_reference",
    "parse_www_authenticate",
    "remove_credentials",
    "save_archive",
    "save_credentials",
    "untagged_images",
    "verify_login",
]
