"""Device identity, keys and certificates, config, enrollment, install, self-test.

Empty until the provisioning work; the package exists so the layout matches DESIGN §2.
"""
