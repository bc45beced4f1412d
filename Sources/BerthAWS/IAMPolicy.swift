import BerthModel

/// What IAM must allow for Berth's calls: the policy in `charts/aws/berth-iam-policy.json` (README's
/// "IAM policy") grants exactly the actions Berth sends plus those AWS authorises on its behalf.
public enum IAMPolicy {
    /// Actions AWS checks when Berth calls the key (the call itself is authorised as well):
    /// CreateFleet launches through RunInstances and tags at launch through CreateTags, and passes
    /// the instance profile's role (iam:PassRole); CreateLaunchTemplate tags the template through
    /// CreateTags and passes the role it names; CreateInstanceProfile with tags needs
    /// TagInstanceProfile; AddRoleToInstanceProfile passes the role.
    public static let impliedActions: [String: [String]] = [
        "ec2:CreateFleet": ["ec2:RunInstances", "ec2:CreateTags", "iam:PassRole"],
        "ec2:CreateLaunchTemplate": ["ec2:CreateTags", "iam:PassRole"],
        "iam:CreateInstanceProfile": ["iam:TagInstanceProfile"],
        "iam:AddRoleToInstanceProfile": ["iam:PassRole"],
    ]

    /// `called` with the actions they imply.
    public static func required(for called: Set<String>) -> Set<String> {
        called.union(called.flatMap { impliedActions[$0] ?? [] })
    }

    /// Every action a policy document's `Allow` statements name (`Action` a string or a list).
    public static func allowedActions(_ document: JSON) throws(ConfigError) -> Set<String> {
        guard let statements = document["Statement"]?.arrayValue else {
            throw ConfigError(path: "Statement", message: "a policy document needs a Statement list")
        }
        var actions: Set<String> = []
        for (index, statement) in statements.enumerated() where statement["Effect"]?.stringValue == "Allow" {
            switch statement["Action"] {
            case .string(let action)?: actions.insert(action)
            case .array(let list)?: actions.formUnion(list.compactMap(\.stringValue))
            default: throw ConfigError(path: "Statement[\(index)].Action", message: "expected a string or a list of strings")
            }
        }
        return actions
    }
}
