import BerthModel
import Foundation

/// EC2 on-demand prices from the AWS Price List Query API (`AWSPriceListService.GetProducts`, JSON
/// 1.1, SigV4 service `pricing`): EC2 itself has no price API. One region's Linux, shared-tenancy,
/// no-pre-installed-software, capacity-status-`Used` products, every page, each a JSON document in
/// a string (`PriceList`), the hourly USD price under `terms.OnDemand.*.priceDimensions.*`.
public struct PriceListAPI: Sendable {
    public let client: AWSJSONClient

    public init(client: AWSJSONClient) {
        self.client = client
    }

    /// The Price List endpoint region that serves `region`: the API answers only in us-east-1,
    /// eu-central-1 and ap-south-1 (any of them for any region); the nearest is used.
    public static func pricingRegion(for region: String) -> String {
        if region.hasPrefix("eu-") || region.hasPrefix("me-") || region.hasPrefix("af-") || region.hasPrefix("il-") { return "eu-central-1" }
        if region.hasPrefix("ap-") { return "ap-south-1" }
        return "us-east-1"
    }

    public static func endpoint(pricingRegion: String) -> AWSEndpoint {
        AWSEndpoint(secure: true, host: "api.pricing.\(pricingRegion).amazonaws.com")
    }

    /// The filters of `GetProducts` for `region`'s on-demand Linux prices.
    public static func filters(region: String) -> [JSON] {
        [("regionCode", region), ("operatingSystem", "Linux"), ("tenancy", "Shared"), ("preInstalledSw", "NA"), ("capacitystatus", "Used")].map {
            .object(["Type": "TERM_MATCH", "Field": .string($0.0), "Value": .string($0.1)])
        }
    }

    /// Instance type → on-demand $/hour in `region`, every page read. A product without an
    /// hourly USD price above zero is skipped; a type listed twice keeps the lower price.
    public func onDemandPrices(region: String, pageSize: Int = 100) async throws(AWSError) -> [String: Double] {
        var prices: [String: Double] = [:]
        var token: String?
        var pages = 0
        repeat {
            var input: JSONObject = [
                "ServiceCode": "AmazonEC2", "FormatVersion": "aws_v1", "Filters": .array(Self.filters(region: region)),
                "MaxResults": .number(pageSize),
            ]
            if let token { input["NextToken"] = .string(token) }
            let answer = try await client.call("GetProducts", .object(input))
            guard let list = answer["PriceList"]?.arrayValue else {
                throw .malformedResponse(action: "GetProducts", reason: "no PriceList list")
            }
            for (index, item) in list.enumerated() {
                guard let text = item.stringValue else {
                    throw .malformedResponse(action: "GetProducts", reason: "PriceList[\(index)] is not a string (a JSON document in a string)")
                }
                if let (type, price) = try Self.product(text, index: index) {
                    prices[type] = min(price, prices[type] ?? .infinity)
                }
            }
            token = answer["NextToken"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            pages += 1
            if pages > 10_000 { throw .malformedResponse(action: "GetProducts", reason: "more than 10000 pages: NextToken never ends") }
        } while token != nil
        return prices
    }

    /// One `PriceList` entry: its instance type and hourly on-demand USD price; nil when it has none.
    static func product(_ text: String, index: Int) throws(AWSError) -> (String, Double)? {
        let document: JSON
        do { document = try JSONParser.parse(text) } catch {
            throw .malformedResponse(action: "GetProducts", reason: "PriceList[\(index)] is not a JSON document: \(error)")
        }
        guard let type = document["product"]?["attributes"]?["instanceType"]?.stringValue, !type.isEmpty else { return nil }
        guard case .object(let terms)? = document["terms"]?["OnDemand"] else { return nil }
        var best: Double?
        for term in terms {
            guard case .object(let dimensions)? = term.value["priceDimensions"] else { continue }
            for dimension in dimensions {
                guard dimension.value["unit"]?.stringValue == "Hrs", let text = dimension.value["pricePerUnit"]?["USD"]?.stringValue,
                      let price = Double(text), price > 0, price.isFinite else { continue }
                best = min(price, best ?? .infinity)
            }
        }
        return best.map { (type, $0) }
    }
}
