//! Whether a sentence model reads Chinese: asked of the model itself, not of its name, so the answer
//! holds for a local model and for one behind an `/v1/embeddings` server alike.
//!
//! Each probe is a request, a rewording of it that shares almost no characters, and a request about
//! something else that shares many. A model that reads the language puts the rewording nearer; one
//! that only sees characters (an English model meets Chinese as a string of unrelated word pieces)
//! puts the look-alike nearer. The probes are the project's own sentences, about nothing in particular.

use crate::{EmbedError, Embedder};

/// (request, rewording, look-alike on another matter).
const CHINESE_PROBES: [(&str, &str, &str); 8] = [
    ("输对密码也进不去", "登录总是失败", "密码锁的电池输出不对"),
    (
        "社保卡丢了怎么补办",
        "医保卡遗失后如何重新申领",
        "社保费怎么缴纳",
    ),
    (
        "楼上邻居装修噪音太大",
        "隔壁施工吵得睡不着",
        "楼上的房子装修好了吗",
    ),
    ("路灯坏了晚上很黑", "街边照明设施损坏", "晚上很冷暖气坏了"),
    ("快递一直没有送到", "包裹迟迟未收到", "快递员态度一直很好"),
    (
        "工资被拖欠了三个月",
        "老板不发薪水",
        "三个月的工资条怎么打印",
    ),
    (
        "小区垃圾没人清理",
        "生活废弃物堆积无人处理",
        "小区没有停车位",
    ),
    (
        "网页打不开一直转圈",
        "网站无法访问加载失败",
        "网页字体太小看不清",
    ),
];

/// A model reads the language when it gets at least half right. One that goes by characters gets
/// almost none (all-MiniLM-L6-v2: 0 of 8), one that reads gets most (m3e-small: 5 of 8; the look-alikes
/// are hard on purpose), so half leaves room on both sides.
const READS_AT: usize = 4;

/// How a model did on the Chinese probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChineseReading {
    /// Probes whose rewording the model put nearer than the look-alike.
    pub right: usize,
    pub probes: usize,
}

impl ChineseReading {
    pub fn reads(&self) -> bool {
        self.right >= READS_AT
    }
}

/// Embeds the probes (24 short texts, one call) and counts the ones the model gets right.
pub async fn read_chinese(embedder: &dyn Embedder) -> Result<ChineseReading, EmbedError> {
    let texts = CHINESE_PROBES
        .iter()
        .flat_map(|(a, b, c)| [*a, *b, *c])
        .map(str::to_owned)
        .collect();
    let vectors = embedder.embed(texts).await?;
    let right = vectors
        .chunks_exact(3)
        .filter(|v| dot(&v[0], &v[1]) > dot(&v[0], &v[2]))
        .count();
    Ok(ChineseReading {
        right,
        probes: CHINESE_PROBES.len(),
    })
}

/// Vectors are L2-normalised, so this is their cosine.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
