/// The tags Berth puts on every instance it launches, so that state can be rebuilt from the cloud
/// alone after a crash: which cluster owns it, which pool it belongs to, which launch made it.
public enum CloudTag {
    public static let cluster = "berth.dev/cluster"
    public static let pool = "berth.dev/pool"
    public static let launchID = "berth.dev/launch-id"
    /// The image (EC2: AMI) an instance was launched from, where the cloud tags it (node classes).
    public static let image = "berth.dev/image"
}
