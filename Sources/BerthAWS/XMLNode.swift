import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// An element of an AWS XML answer: its local name, its own text and its child elements. AWS's
/// Query APIs use no attributes and no mixed content that matters, so this is all Berth reads.
public struct XMLNode: Sendable, Equatable {
    public var name: String
    public var text: String
    public var children: [XMLNode]

    public init(name: String, text: String = "", children: [XMLNode] = []) {
        self.name = name
        self.text = text
        self.children = children
    }

    public func child(_ name: String) -> XMLNode? { children.first { $0.name == name } }
    public func children(_ name: String) -> [XMLNode] { children.filter { $0.name == name } }

    /// The trimmed text of the child reached by `names`; nil when absent.
    public func string(_ names: String...) -> String? {
        var node: XMLNode? = self
        for name in names { node = node?.child(name) }
        return node.map { $0.text.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    /// The `<item>` children of the child reached by `names` (EC2's lists); empty when absent.
    public func items(_ names: String...) -> [XMLNode] {
        var node: XMLNode? = self
        for name in names { node = node?.child(name) }
        return node?.children("item") ?? []
    }

    /// The first element named `name` at any depth, this one included (depth first).
    public func first(_ name: String) -> XMLNode? {
        if self.name == name { return self }
        for child in children {
            if let found = child.first(name) { return found }
        }
        return nil
    }

    /// Parses a whole document. `what` names it in the error (the API action).
    public static func parse(_ bytes: [UInt8], what: String) throws(AWSError) -> XMLNode {
        guard !bytes.isEmpty else { throw .malformedResponse(action: what, reason: "empty body where XML was expected") }
        let builder = TreeBuilder()
        let parser = XMLParser(data: Data(bytes))
        parser.shouldProcessNamespaces = true
        parser.delegate = builder
        let ok = parser.parse()
        if !ok || builder.root == nil {
            let reason = parser.parserError.map { "\($0.localizedDescription)" } ?? "not an XML document"
            throw .malformedResponse(
                action: what, reason: "invalid XML at line \(parser.lineNumber), column \(parser.columnNumber): \(reason); body starts \(Self.preview(bytes))")
        }
        return builder.root!
    }

    /// The first 120 characters, one line, for error messages.
    static func preview(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes.prefix(120), as: UTF8.self).replacingOccurrences(of: "\n", with: " ")
        return "\"\(text)\(bytes.count > 120 ? "..." : "")\""
    }
}

/// Builds the tree while XMLParser reads; used on one thread for one document.
private final class TreeBuilder: NSObject, XMLParserDelegate {
    var stack: [XMLNode] = []
    var root: XMLNode?

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        stack.append(XMLNode(name: elementName))
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if !stack.isEmpty { stack[stack.count - 1].text += string }
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
        guard let node = stack.popLast() else { return }
        if stack.isEmpty { root = node } else { stack[stack.count - 1].children.append(node) }
    }
}
