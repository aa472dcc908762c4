"""Apple's pinning formats: App Transport Security and TrustKit.

:mod:`~pinset.formats._apple.ios_ats` is Info.plist ``NSPinnedDomains`` (format
``ios-ats``); :mod:`~pinset.formats._apple.trustkit` is TrustKit's configuration
as a plist or Swift dictionary (formats ``trustkit``, ``trustkit-swift``). Both
read property lists through :mod:`~pinset.formats._apple._plist`, which keeps the
line of every key.
"""
