//! Historical tickets in English and Chinese, three departments.

use switchboard_proto::KnowledgeRecord;

pub const HISTORY: &[(&str, &str)] = &[
    ("billing", "I was charged twice for my monthly subscription"),
    (
        "billing",
        "Please refund the duplicate payment on my credit card",
    ),
    (
        "billing",
        "The invoice amount is wrong, I was billed for a plan I cancelled",
    ),
    (
        "billing",
        "Why does my bank statement show an extra charge from you",
    ),
    (
        "delivery",
        "My parcel has not arrived and the tracking number shows no updates",
    ),
    (
        "delivery",
        "The courier delivered the package to the wrong address",
    ),
    (
        "delivery",
        "Order shipped a week ago but delivery is still pending",
    ),
    (
        "delivery",
        "The box arrived damaged and the items inside are broken",
    ),
    (
        "account",
        "I cannot log in, the password reset email never arrives",
    ),
    (
        "account",
        "My account was locked after too many login attempts",
    ),
    ("account", "How do I change the email address on my profile"),
    (
        "account",
        "The two-factor code is not accepted when I sign in",
    ),
    ("billing", "我的会员费被重复扣款了两次"),
    ("billing", "请把多扣的钱退款到我的银行卡"),
    ("billing", "发票金额不对，已经取消的套餐还在收费"),
    ("billing", "银行账单上多了一笔你们的扣费"),
    ("delivery", "我的快递一直没有送到，物流信息也不更新"),
    ("delivery", "快递员把包裹送到了错误的地址"),
    ("delivery", "订单一周前就发货了，到现在还没收到"),
    ("delivery", "收到的包裹破损了，里面的东西坏了"),
    ("account", "我无法登录，密码重置邮件一直收不到"),
    ("account", "登录失败次数太多，账号被锁定了"),
    ("account", "怎么修改个人资料里的手机号"),
    ("account", "登录时验证码一直提示错误"),
];

/// The history as records `h-0`, `h-1`, ...: creation times a millisecond apart, a resolution time
/// on every other one, source and weight left to their defaults.
pub fn history() -> Vec<KnowledgeRecord> {
    HISTORY
        .iter()
        .enumerate()
        .map(|(i, (department, text))| KnowledgeRecord {
            id: format!("h-{i}"),
            text: (*text).to_owned(),
            department: (*department).to_owned(),
            created_at_ms: 1_700_000_000_000 + i as i64,
            resolution_minutes: (i % 2 == 0).then_some(30 + i as i64),
            source: String::new(),
            weight: 0.0,
            problem_type: String::new(),
        })
        .collect()
}
