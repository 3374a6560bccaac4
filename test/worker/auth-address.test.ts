import { describe, expect, it } from "vitest";
import { addressNetwork } from "../../src/auth/client-ip";

describe("the network an address is counted as", () => {
  it("is an IPv4 address itself, an IPv6 address's /64 however it is spelled, a mapped IPv4 its IPv4", () => {
    expect(addressNetwork("203.0.113.9")).toBe("203.0.113.9");
    for (const ip of [
      "2001:db8:1:2:3:4:5:6",
      "2001:db8:1:2::1",
      "2001:0DB8:0001:0002:ffff::",
      "2001:db8:1:2::1.2.3.4",
      "2001:db8:1:2::7%eth0",
    ]) {
      expect(addressNetwork(ip), ip).toBe("2001:db8:1:2::/64");
    }
    expect(addressNetwork("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(addressNetwork("2001:db8:1:3::1")).toBe("2001:db8:1:3::/64");
    expect(addressNetwork("::1")).toBe("0:0:0:0::/64");
    expect(addressNetwork("::ffff:198.51.100.7")).toBe("198.51.100.7");
  });

  it("keeps what does not parse as an address as it is", () => {
    for (const odd of ["unknown", "1:2:3:4:5:6:7:8:9", "1::2::3", "2001:db8:zz:1::1", "1:2:3", ""]) {
      expect(addressNetwork(odd), odd).toBe(odd);
    }
  });
});
