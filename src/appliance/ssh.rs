//! The appliance over SSH: `ghe-license` as `admin` on port 122, through a
//! configurable SSH command, with the host key pinned by a known_hosts file.
