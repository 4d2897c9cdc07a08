//! Chinese place names, reported only when the word itself says it is one: 2 to 6 Chinese characters
//! ending in an administrative or street suffix (北京市, 朝阳区, 中山路), taken from segmented words. jieba
//! keeps some addresses whole (上海市浦东新区), so a word is first cut after each suffix.

use switchboard_proto::Entity;
use switchboard_text::is_han;

const SUFFIXES: &[char] = &['省', '市', '区', '县', '路', '街'];

const MAX_CHARS: usize = 6;

/// Everyday words that end in a place suffix but name no particular place. A wrong place is worse than
/// none: routers read a place as the jurisdiction.
const COMMON: &[&str] = &[
    "超市",
    "城市",
    "股市",
    "上市",
    "夜市",
    "菜市",
    "门市",
    "全市",
    "本市",
    "市区",
    "地区",
    "小区",
    "社区",
    "街区",
    "景区",
    "园区",
    "专区",
    "分区",
    "误区",
    "禁区",
    "郊区",
    "山区",
    "城区",
    "灾区",
    "辖区",
    "片区",
    "校区",
    "服务区",
    "停车区",
    "道路",
    "马路",
    "思路",
    "线路",
    "网路",
    "出路",
    "套路",
    "电路",
    "公路",
    "铁路",
    "一路",
    "走路",
    "迷路",
    "短路",
    "回路",
    "来路",
    "去路",
    "销路",
    "门路",
    "大街",
    "上街",
    "逛街",
    "步行街",
    "商业街",
    "美食街",
    "全省",
    "本省",
    "外省",
    "节省",
    "反省",
    "全县",
    "本县",
];

/// Place entities among `tokens`, in order, each once.
pub(crate) fn find(tokens: &[String]) -> Vec<Entity> {
    let mut out: Vec<Entity> = Vec::new();
    for token in tokens.iter().filter(|t| t.chars().all(is_han)) {
        for piece in token.split_inclusive(SUFFIXES) {
            let is_place = (2..=MAX_CHARS).contains(&piece.chars().count())
                && piece.ends_with(SUFFIXES)
                && !COMMON.contains(&piece);
            if is_place && !out.iter().any(|e| e.value == piece) {
                out.push(Entity {
                    kind: "PLACE".to_owned(),
                    value: piece.to_owned(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places(text: &str) -> Vec<String> {
        find(&switchboard_text::tokens(text))
            .into_iter()
            .map(|e| e.value)
            .collect()
    }

    #[test]
    fn named_places_only() {
        assert_eq!(
            places("我在北京市朝阳区，北京市的超市都关门了"),
            ["北京市", "朝阳区"]
        );
        assert_eq!(
            places("杭州市西湖区文三路，南京路步行街"),
            ["杭州市", "西湖区", "文三路", "南京路"]
        );
        assert!(places("小区门口的马路坏了，城市管理没人管，路由器也坏了").is_empty());
    }

    #[test]
    fn addresses_kept_whole_are_cut_at_each_suffix() {
        assert_eq!(places("上海市浦东新区的路灯坏了"), ["上海市", "浦东新区"]);
    }
}
