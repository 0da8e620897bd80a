// IntrusiveHash: lookups stay right while the bucket array grows, and an
// insert at the memory limit still links the element (chains grow longer).
#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "base/intrusive_hash.h"

namespace {

struct Node {
  rump::bi::unordered_set_member_hook<> hook;
  std::string name;
  int value = 0;
};
struct NameOf {
  using type = std::string_view;
  std::string_view operator()(const Node& n) const { return n.name; }
};
using Table = rump::IntrusiveHash<Node, &Node::hook, NameOf>;

}  // namespace

TEST_CASE("IntrusiveHash: insert, find, erase across growth", "[base]") {
  rump::Kmem kmem;
  std::vector<Node> nodes(5000);
  {
    Table t(kmem);
    for (size_t i = 0; i < nodes.size(); i++) {
      nodes[i].name = "n" + std::to_string(i);
      nodes[i].value = static_cast<int>(i);
      REQUIRE(t.insert(nodes[i]));
    }
    CHECK(t.size() == nodes.size());
    CHECK(t.bucket_count() >= nodes.size());
    Node dup;
    dup.name = "n17";
    CHECK_FALSE(t.insert(dup));
    for (size_t i = 0; i < nodes.size(); i += 7) {
      Node* n = t.find("n" + std::to_string(i));
      REQUIRE(n != nullptr);
      CHECK(n->value == static_cast<int>(i));
    }
    CHECK(t.find("absent") == nullptr);
    for (size_t i = 0; i < nodes.size(); i += 2) t.erase(nodes[i]);
    CHECK(t.size() == nodes.size() / 2);
    CHECK(t.find("n2") == nullptr);
    CHECK(t.find("n3") != nullptr);
    t.clear();
    CHECK(t.empty());
  }
  CHECK(kmem.in_use() == 0);
}

TEST_CASE("IntrusiveHash: at the memory limit inserts still succeed", "[base]") {
  rump::Kmem kmem(256);  // room for no bucket array beyond the inline one
  std::vector<Node> nodes(1000);
  Table t(kmem);
  for (size_t i = 0; i < nodes.size(); i++) {
    nodes[i].name = "x" + std::to_string(i);
    REQUIRE(t.insert(nodes[i]));
  }
  CHECK(t.bucket_count() < nodes.size());
  for (size_t i = 0; i < nodes.size(); i++) CHECK(t.find("x" + std::to_string(i)) == &nodes[i]);
  t.clear_and_dispose([](Node* n) { n->value = -1; });
  CHECK(nodes[5].value == -1);
}
