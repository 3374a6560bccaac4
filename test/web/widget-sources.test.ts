import { describe, expect, it } from "vitest";
import { sourceItems } from "../../web/widget/sources";

describe("widget: cited sources", () => {
  it("links only absolute http(s) URLs and shows the rest as text", () => {
    expect(
      sourceItems([
        { id: "1", title: "Shipping", url: "https://shop.example/shipping" },
        { id: "2", title: "Local", url: "http://localhost:8787/returns" },
        { id: "3", title: "Script", url: "javascript:alert(1)" },
        { id: "4", title: "Mail", url: "mailto:help@shop.example" },
        { id: "5", title: "Data", url: "data:text/html,<script>x</script>" },
        { id: "6", title: "Relative", url: "/faq" },
        { id: "7", title: "No link", url: null },
        { id: "8", title: "", url: "https://shop.example/untitled" },
      ]),
    ).toEqual([
      { title: "Shipping", href: "https://shop.example/shipping" },
      { title: "Local", href: "http://localhost:8787/returns" },
      { title: "Script" },
      { title: "Mail" },
      { title: "Data" },
      { title: "Relative" },
      { title: "No link" },
      { title: "https://shop.example/untitled", href: "https://shop.example/untitled" },
    ]);
  });
});
