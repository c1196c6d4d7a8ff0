package synth

import (
	"fmt"
	"strings"
	"sync"
)

// Word is one vocabulary item in English and Chinese. Unit is the Chinese
// measure word used when counting it ("只" for a cat), where one is needed.
type Word struct {
	En, Zh, Unit string
}

// Person is one inhabitant of a [World]. Place and Friend index
// World.Places and World.People.
type Person struct {
	Name, NameZh string
	Place        int
	Job          Word
	Age          int
	Colour       Word
	Pet          Word
	Friend       int
}

// Place is a town of a [World].
type Place struct {
	Name, NameZh string
}

// World is a small generated world whose facts the built-in corpus states
// and the built-in tasks ask about. Names are built from syllables that have
// a fixed Chinese transliteration, so "Mira" is always "米拉".
type World struct {
	People []Person
	Places []Place
}

// WorldOptions configure [NewWorld]. Zero fields take the defaults.
type WorldOptions struct {
	Seed   int64
	People int // default 60, at most 400
	Places int // default 12, at most 100
}

// The vocabularies. No entry is a substring of another in the same table,
// in either language, so a checker can search answers for them.
var (
	jobs = []Word{
		{"baker", "面包师", ""}, {"farmer", "农民", ""}, {"teacher", "老师", ""},
		{"doctor", "医生", ""}, {"fisher", "渔民", ""}, {"painter", "画家", ""},
		{"builder", "建筑工", ""}, {"singer", "歌手", ""}, {"tailor", "裁缝", ""},
		{"nurse", "护士", ""}, {"cook", "厨师", ""}, {"miner", "矿工", ""},
		{"potter", "陶工", ""}, {"driver", "司机", ""}, {"guard", "警卫", ""},
		{"writer", "作家", ""}, {"carpenter", "木匠", ""}, {"gardener", "园丁", ""},
	}
	colours = []Word{
		{"red", "红色", ""}, {"blue", "蓝色", ""}, {"green", "绿色", ""},
		{"yellow", "黄色", ""}, {"purple", "紫色", ""}, {"orange", "橙色", ""},
		{"white", "白色", ""}, {"black", "黑色", ""}, {"pink", "粉色", ""},
		{"brown", "棕色", ""}, {"grey", "灰色", ""},
	}
	animals = []Word{
		{"cat", "猫", "只"}, {"dog", "狗", "只"}, {"rabbit", "兔子", "只"},
		{"goat", "山羊", "只"}, {"parrot", "鹦鹉", "只"}, {"goldfish", "金鱼", "条"},
		{"turtle", "乌龟", "只"}, {"hamster", "仓鼠", "只"}, {"duck", "鸭子", "只"},
		{"pig", "小猪", "头"}, {"horse", "骏马", "匹"}, {"snake", "蛇", "条"},
	}
	// things are counted in list tasks and word problems.
	things = []Word{
		{"apples", "苹果", "个"}, {"eggs", "鸡蛋", "个"}, {"books", "书", "本"},
		{"coins", "硬币", "枚"}, {"shells", "贝壳", "个"}, {"stamps", "邮票", "张"},
		{"pencils", "铅笔", "支"}, {"cups", "杯子", "个"}, {"flowers", "花", "朵"},
		{"cards", "卡片", "张"}, {"marbles", "弹珠", "颗"}, {"pears", "梨", "个"},
	}
	fruits = []Word{
		{"apple", "苹果", ""}, {"pear", "梨", ""}, {"plum", "李子", ""},
		{"grape", "葡萄", ""}, {"lemon", "柠檬", ""}, {"peach", "桃子", ""},
		{"banana", "香蕉", ""}, {"cherry", "樱桃", ""}, {"melon", "西瓜", ""},
	}
)

// Name syllables with their transliterations. People are a start and an
// end syllable ("Mi"+"ra"); towns are a start syllable and a town ending.
var (
	startSyl = [][2]string{
		{"ma", "马"}, {"mi", "米"}, {"mo", "莫"}, {"na", "纳"}, {"ni", "尼"},
		{"no", "诺"}, {"ta", "塔"}, {"ti", "蒂"}, {"to", "托"}, {"ka", "卡"},
		{"ki", "基"}, {"ko", "科"}, {"sa", "萨"}, {"si", "西"}, {"so", "索"},
		{"da", "达"}, {"de", "德"}, {"do", "多"}, {"be", "贝"}, {"bo", "博"},
		{"fe", "菲"}, {"ha", "哈"}, {"ja", "贾"}, {"lu", "卢"}, {"ve", "维"},
		{"wa", "瓦"}, {"ze", "泽"}, {"ri", "里"}, {"ro", "罗"}, {"pe", "佩"},
	}
	endSyl = [][2]string{
		{"ra", "拉"}, {"na", "娜"}, {"ro", "罗"}, {"lo", "洛"}, {"ta", "塔"},
		{"mi", "米"}, {"ka", "卡"}, {"no", "诺"}, {"li", "莉"}, {"sa", "莎"},
		{"ren", "伦"}, {"lin", "林"}, {"dan", "丹"}, {"ton", "顿"}, {"mar", "玛"},
		{"vin", "文"}, {"rik", "里克"}, {"das", "达斯"}, {"bel", "贝尔"}, {"ley", "蕾"},
	}
	townEnd = [][2]string{
		{"ford", "福德"}, {"wick", "维克"}, {"dale", "代尔"}, {"mere", "米尔"},
		{"burg", "堡"}, {"haven", "港"}, {"field", "菲尔德"}, {"moor", "摩尔"},
		{"stead", "斯特德"}, {"brook", "布鲁克"},
	}
)

var (
	defaultWorldOnce sync.Once
	defaultWorld     *World
)

// DefaultWorld returns the built-in world: NewWorld(WorldOptions{Seed: 1}).
// The corpus and the tasks use it unless told otherwise. Callers must not
// modify it.
func DefaultWorld() *World {
	defaultWorldOnce.Do(func() { defaultWorld = NewWorld(WorldOptions{Seed: 1}) })
	return defaultWorld
}

// NewWorld generates a world. The same options always give the same world.
// Out-of-range sizes are clamped to [2, 400] people and [2, 100] places.
func NewWorld(opts WorldOptions) *World {
	nPeople := clamp(orDefault(opts.People, 60), 2, 400)
	nPlaces := clamp(orDefault(opts.Places, 12), 2, 100)
	r := newRNG(opts.Seed, 1)
	names := newNameSet()
	w := &World{}
	for len(w.Places) < nPlaces {
		s, e := pick(r, startSyl), pick(r, townEnd)
		if en, zh := capitalize(s[0]+e[0]), s[1]+e[1]; names.add(en, zh) {
			w.Places = append(w.Places, Place{Name: en, NameZh: zh})
		}
	}
	for len(w.People) < nPeople {
		s, e := pick(r, startSyl), pick(r, endSyl)
		if en, zh := capitalize(s[0]+e[0]), s[1]+e[1]; names.add(en, zh) {
			w.People = append(w.People, Person{Name: en, NameZh: zh})
		}
	}
	for i := range w.People {
		p := &w.People[i]
		p.Place = r.intn(nPlaces)
		p.Job = pick(r, jobs)
		p.Age = r.between(18, 79)
		p.Colour = pick(r, colours)
		p.Pet = pick(r, animals)
		p.Friend = r.intn(nPeople - 1)
		if p.Friend >= i {
			p.Friend++
		}
	}
	return w
}

// nameSet keeps names that are unique and not contained in one another
// (nor in any vocabulary word), in both languages, so that an answer that
// mentions one name never mentions another by accident.
type nameSet struct{ en, zh []string }

func newNameSet() *nameSet {
	s := &nameSet{}
	for _, table := range [][]Word{jobs, colours, animals, things, fruits} {
		for _, w := range table {
			s.en = append(s.en, w.En)
			s.zh = append(s.zh, w.Zh)
		}
	}
	return s
}

func (s *nameSet) add(en, zh string) bool {
	len0 := strings.ToLower(en)
	for _, o := range s.en {
		if strings.Contains(o, len0) || strings.Contains(len0, o) {
			return false
		}
	}
	for _, o := range s.zh {
		if strings.Contains(o, zh) || strings.Contains(zh, o) {
			return false
		}
	}
	s.en = append(s.en, len0)
	s.zh = append(s.zh, zh)
	return true
}

// The capacity of the name generator is far above the clamps in NewWorld
// (600 people, 300 towns before collisions), so its loops terminate.

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func clamp(v, lo, hi int) int { return max(lo, min(v, hi)) }

func orDefault(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}

// PlaceOf returns the town person p lives in.
func (w *World) PlaceOf(p Person) Place { return w.Places[p.Place] }

// FriendOf returns person p's friend.
func (w *World) FriendOf(p Person) Person { return w.People[p.Friend] }

// Validate reports whether a world built by hand can be used: at least two
// people and one town, names present and unique, indices in range and no
// one their own friend. Worlds from NewWorld are valid.
func (w *World) Validate() error {
	if len(w.People) < 2 || len(w.Places) < 1 {
		return fmt.Errorf("synth: world has %d people and %d towns, want at least 2 and 1", len(w.People), len(w.Places))
	}
	seen := map[string]bool{}
	for i, p := range w.People {
		switch {
		case p.Name == "" || p.NameZh == "":
			return fmt.Errorf("synth: world: person %d has no name", i)
		case seen[p.Name]:
			return fmt.Errorf("synth: world: person %d: name %q used twice", i, p.Name)
		case p.Place < 0 || p.Place >= len(w.Places):
			return fmt.Errorf("synth: world: person %d (%s): town %d out of range", i, p.Name, p.Place)
		case p.Friend < 0 || p.Friend >= len(w.People) || p.Friend == i:
			return fmt.Errorf("synth: world: person %d (%s): friend %d invalid", i, p.Name, p.Friend)
		case p.Job.En == "" || p.Colour.En == "" || p.Pet.En == "":
			return fmt.Errorf("synth: world: person %d (%s): job, colour or pet missing", i, p.Name)
		}
		seen[p.Name] = true
	}
	return nil
}
